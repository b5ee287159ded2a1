from soclite.cli import main

main()
