"""Collectors: turn bytes from syslog, HTTP, files, the network and agents into Events."""
