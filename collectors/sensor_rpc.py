"""The network sensor's Kerberos and DCE/RPC dissectors: Zeek kerberos.log and dce_rpc.log-shaped events.

* ``service: kerberos`` — one event per KDC reply (AS-REP, TGS-REP: RFC 4120 5.4.2) or KRB-ERROR
  (5.9.1), over UDP or TCP port 88 (TCP: a 4-byte record mark first): Zeek's ``request_type``
  ("AS"/"TGS"), ``client`` ("name/REALM"), ``service`` (the ticket's server name, parts joined by
  "/"), ``success``, ``cipher`` (the ticket's encryption type, by Zeek's names: "rc4-hmac",
  "aes256-cts-hmac-sha1-96", ...) and, for an error, ``error_msg`` (KDC_ERR_PREAUTH_REQUIRED, ...).
  A reply says which kind of request it answers; an error does not, so the request's kind is
  remembered per (client, server, client port) when the request was seen.
* ``service: dce_rpc`` — one event per DCE/RPC connection-oriented REQUEST (C706 12.6.4.9) over TCP
  (ncacn_ip_tcp): Zeek's ``endpoint`` (the interface bound to the request's presentation context
  by an earlier BIND or ALTER_CONTEXT, named as Zeek names it: spoolss, IRemoteWinspool, svcctl,
  ITaskSchedulerService, atsvc, efsrpc, ...; an unknown interface keeps its UUID) and ``operation``
  (the opnum's name for the interfaces below, else "unknown-<opnum>").

Not dissected: DCE/RPC carried in SMB named-pipe reads/writes (ncacn_np) and connectionless RPC;
PDUs split over TCP segments. Everything is bounded: malformed bytes give no event, never an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

from soclite.errors import SocliteError
from soclite.models import Event

# ---------------------------------------------------------------------------------------- Kerberos
#: Zeek's names of Kerberos encryption types (RFC 3961, 4757, 3962)
CIPHERS = {1: "des-cbc-crc", 2: "des-cbc-md4", 3: "des-cbc-md5", 16: "des3-cbc-sha1", 17: "aes128-cts-hmac-sha1-96",
           18: "aes256-cts-hmac-sha1-96", 19: "aes128-cts-hmac-sha256-128", 20: "aes256-cts-hmac-sha384-192",
           23: "rc4-hmac", 24: "rc4-hmac-exp", 25: "camellia128-cts-cmac", 26: "camellia256-cts-cmac"}  # fmt: skip
#: RFC 4120 7.5.9 error codes, as Zeek logs them
ERRORS = {6: "KDC_ERR_C_PRINCIPAL_UNKNOWN", 7: "KDC_ERR_S_PRINCIPAL_UNKNOWN", 12: "KDC_ERR_POLICY",
          14: "KDC_ERR_ETYPE_NOSUPP", 18: "KDC_ERR_CLIENT_REVOKED", 23: "KDC_ERR_KEY_EXPIRED",
          24: "KDC_ERR_PREAUTH_FAILED", 25: "KDC_ERR_PREAUTH_REQUIRED", 31: "KRB_AP_ERR_BAD_INTEGRITY",
          32: "KRB_AP_ERR_TKT_EXPIRED", 37: "KRB_AP_ERR_SKEW", 41: "KRB_AP_ERR_MODIFIED", 60: "KRB_ERR_GENERIC"}  # fmt: skip
_AS_REQ, _AS_REP, _TGS_REQ, _TGS_REP, _KRB_ERROR = 0x6A, 0x6B, 0x6C, 0x6D, 0x7E
MAX_DEPTH = 8


class _Bad(SocliteError):
    """Malformed DER: the message is skipped (never leaves this module)."""


def _tlv(data: bytes, i: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the DER element at ``i`` (single-byte tags, definite lengths)."""
    if i + 2 > len(data):
        raise _Bad
    tag, first = data[i], data[i + 1]
    i += 2
    if first < 0x80:
        size = first
    else:
        n = first & 0x7F
        if not 1 <= n <= 4 or i + n > len(data):
            raise _Bad
        size = int.from_bytes(data[i : i + n], "big")
        i += n
    if i + size > len(data):
        raise _Bad
    return tag, i, i + size


def _fields(data: bytes, start: int, end: int) -> dict[int, tuple[int, int, int]]:
    """The elements of a SEQUENCE's body by tag (context tags [n] are 0xA0 + n)."""
    out: dict[int, tuple[int, int, int]] = {}
    i = start
    while i < end:
        tag, s, e = _tlv(data, i)
        out.setdefault(tag, (tag, s, e))
        i = e
    return out


def _inner(data: bytes, element: tuple[int, int, int], want: int) -> tuple[int, int]:
    """The value span of the single element of tag ``want`` inside ``element`` (an explicit tag)."""
    tag, s, e = _tlv(data, element[1])
    if tag != want or e > element[2]:
        raise _Bad
    return s, e


def _sequence(data: bytes, element: tuple[int, int, int]) -> dict[int, tuple[int, int, int]]:
    return _fields(data, *_inner(data, element, 0x30))


def _int(data: bytes, element: tuple[int, int, int]) -> int:
    s, e = _inner(data, element, 0x02)
    if not 1 <= e - s <= 8:
        raise _Bad
    return int.from_bytes(data[s:e], "big", signed=True)


def _string(data: bytes, element: tuple[int, int, int]) -> str:
    s, e = _inner(data, element, 0x1B)  # GeneralString (Kerberos strings are ASCII in practice)
    return data[s:e].decode("utf-8", "replace")


def _principal(data: bytes, element: tuple[int, int, int]) -> str:
    """PrincipalName (RFC 4120 5.2.2): its name-string parts joined by "/"."""
    names = _sequence(data, element).get(0xA1)
    if names is None:
        raise _Bad
    s, e = _inner(data, names, 0x30)
    parts = []
    i = s
    while i < e:
        tag, vs, ve = _tlv(data, i)
        if tag != 0x1B:
            raise _Bad
        parts.append(data[vs:ve].decode("utf-8", "replace"))
        i = ve
    return "/".join(parts)


def kerberos_event(payload: bytes, tcp: bool, request_kinds: dict[Any, str], key: Any,
                   remember: Callable[[dict[Any, str], Any, str], None]) -> Event | None:  # fmt: skip
    """A Zeek kerberos.log-shaped event of one KDC message, or None (a request is only remembered).

    ``key`` identifies the exchange (client, server, client port); ``remember`` stores bounded state."""
    data = payload[4:] if tcp else payload
    if tcp and (len(payload) < 4 or int.from_bytes(payload[:4], "big") & 0x7FFFFFFF != len(data)):
        return None
    try:
        tag, s, e = _tlv(data, 0)
        if tag in (_AS_REQ, _TGS_REQ):
            remember(request_kinds, key, "AS" if tag == _AS_REQ else "TGS")
            return None
        if tag not in (_AS_REP, _TGS_REP, _KRB_ERROR):
            return None
        body = _fields(data, *_inner(data, (tag, s, e), 0x30))
        if tag == _KRB_ERROR:
            code = _int(data, body[0xA6])
            event: Event = {"success": False, "error_code": code, "error_msg": ERRORS.get(code, f"KRB_ERR_{code}")}
            realm = _string(data, body[0xA9])
            if 0xA8 in body:
                crealm = _string(data, body[0xA7]) if 0xA7 in body else realm
                event["client"] = f"{_principal(data, body[0xA8])}/{crealm}"
            event["service"] = _principal(data, body[0xAA])
            kind = request_kinds.pop(key, None)
        else:
            ticket = body[0xA5]
            tkt = _fields(data, *_inner(data, (0, *_inner(data, ticket, 0x61)), 0x30))
            enc = _sequence(data, tkt[0xA3])
            etype = _int(data, enc[0xA0])
            event = {"success": True, "cipher": CIPHERS.get(etype, f"etype-{etype}"),
                     "client": f"{_principal(data, body[0xA4])}/{_string(data, body[0xA3])}",
                     "service": _principal(data, tkt[0xA2])}  # fmt: skip
            kind = "AS" if tag == _AS_REP else "TGS"
            request_kinds.pop(key, None)
    except (_Bad, KeyError, IndexError):
        return None
    if kind is not None:
        event["request_type"] = kind
    event.update({"logsource.product": "zeek", "logsource.service": "kerberos", "event.category": "authentication",
                  "event.action": "kerberos_" + ("error" if tag == _KRB_ERROR else "reply"),
                  "event.outcome": "success" if event["success"] else "failure", "network.protocol": "kerberos"})  # fmt: skip
    if "client" in event:
        event["user.name"] = str(event["client"]).split("/", 1)[0]
    return event


# ---------------------------------------------------------------------------------------- DCE/RPC
#: interface UUID → Zeek's endpoint name, and the operation names by opnum (MS-RPRN, MS-PAR, MS-SCMR,
#: MS-TSCH, MS-EFSR, MS-WMI; Zeek's DCE_RPC consts)
INTERFACES: dict[str, tuple[str, dict[int, str]]] = {
    "12345678-1234-abcd-ef00-0123456789ab": ("spoolss", {0: "RpcEnumPrinters", 1: "RpcOpenPrinter", 9: "RpcAddPrinterDriver",
        14: "RpcAddPrintProcessor", 46: "RpcAddMonitor", 69: "RpcOpenPrinterEx", 89: "RpcAddPrinterDriverEx"}),
    "76f03f96-cdfd-44fc-a22c-64950a001209": ("IRemoteWinspool", {0: "RpcAsyncOpenPrinter", 39: "RpcAsyncAddPrinterDriver",
        44: "RpcAsyncAddPrintProcessor", 62: "RpcAsyncInstallPrinterDriverFromPackage"}),
    "367abb81-9844-35f1-ad32-98f038001003": ("svcctl", {0: "CloseServiceHandle", 12: "CreateServiceW", 15: "OpenSCManagerW",
        16: "OpenServiceW", 19: "StartServiceW", 24: "CreateServiceA"}),
    "86d35949-83c9-4044-b424-db363231fd0c": ("ITaskSchedulerService", {0: "SchRpcHighestVersion", 1: "SchRpcRegisterTask",
        12: "SchRpcRun", 13: "SchRpcDelete", 19: "SchRpcEnableTask"}),
    "1ff70682-0a51-30e8-076d-740be8cee98b": ("atsvc", {0: "NetrJobAdd", 1: "NetrJobDel", 2: "NetrJobEnum"}),
    "c681d488-d850-11d0-8c52-00c04fd90f7e": ("efsrpc", {0: "EfsRpcOpenFileRaw", 4: "EfsRpcEncryptFileSrv",
        5: "EfsRpcDecryptFileSrv", 6: "EfsRpcQueryUsersOnFile", 7: "EfsRpcQueryRecoveryAgents"}),
    "df1941c5-fe89-4e79-bf10-463657acf44d": ("efsrpc", {0: "EfsRpcOpenFileRaw", 4: "EfsRpcEncryptFileSrv",
        5: "EfsRpcDecryptFileSrv", 6: "EfsRpcQueryUsersOnFile", 7: "EfsRpcQueryRecoveryAgents"}),
    "9556dc99-828c-11cf-a37e-00aa003240c7": ("IWbemServices", {6: "OpenNamespace", 20: "ExecQuery", 24: "ExecMethod",
        25: "ExecMethodAsync"}),
    "12345778-1234-abcd-ef00-0123456789ab": ("lsarpc", {}),
    "12345778-1234-abcd-ef00-0123456789ac": ("samr", {}),
    "e3514235-4b06-11d1-ab04-00c04fc2dcd2": ("drsuapi", {3: "DRSGetNCChanges"}),
}  # fmt: skip
_REQUEST, _BIND, _ALTER_CONTEXT = 0, 11, 14


def dcerpc_events(payload: bytes, contexts: dict[Any, str], key: Any,
                  remember: Callable[[dict[Any, str], Any, str], None]) -> list[Event]:  # fmt: skip
    """Zeek dce_rpc.log-shaped events of the connection-oriented PDUs in one TCP segment (client to server).

    BIND/ALTER_CONTEXT bind presentation context ids to interfaces (remembered per ``key`` + id);
    each REQUEST gives an event naming its context's interface and operation."""
    out: list[Event] = []
    i = 0
    while i + 16 <= len(payload) and payload[i] == 5 and payload[i + 1] == 0:
        ptype = payload[i + 2]
        order: Literal["little", "big"] = "little" if payload[i + 4] & 0x10 else "big"
        frag = int.from_bytes(payload[i + 8 : i + 10], order)
        if frag < 16 or i + frag > len(payload):
            break
        pdu = payload[i : i + frag]
        i += frag
        if ptype in (_BIND, _ALTER_CONTEXT) and len(pdu) >= 28:
            count, j = pdu[24], 28
            for _ in range(count):
                if j + 24 > len(pdu):
                    break
                ctx = int.from_bytes(pdu[j : j + 2], order)
                n_syntaxes = pdu[j + 2]
                raw = pdu[j + 4 : j + 20]
                iface = str(uuid.UUID(bytes_le=raw) if order == "little" else uuid.UUID(bytes=raw))
                remember(contexts, (*key, ctx), iface)
                j += 24 + 20 * n_syntaxes
        elif ptype == _REQUEST and len(pdu) >= 24:
            ctx = int.from_bytes(pdu[20:22], order)
            opnum = int.from_bytes(pdu[22:24], order)
            bound = contexts.get((*key, ctx))
            if bound is None:
                continue  # the BIND was not seen: Zeek cannot name it either
            endpoint, operations = INTERFACES.get(bound, (bound, {}))
            operation = operations.get(opnum, f"unknown-{opnum}")
            out.append({"logsource.product": "zeek", "logsource.service": "dce_rpc", "event.category": "network",
                        "event.action": "dce_rpc_request", "endpoint": endpoint, "operation": operation,
                        "rpc.interface": bound, "rpc.opnum": opnum, "network.protocol": "dce_rpc"})  # fmt: skip
    return out
