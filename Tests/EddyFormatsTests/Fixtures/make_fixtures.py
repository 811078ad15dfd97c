#!/usr/bin/env python3
"""Makes the Avro and Protobuf test fixtures with independent encoders
(fastavro, protoc and the Python protobuf runtime). Run once from this
folder: `python3 make_fixtures.py`; its outputs are committed, so the tests
need no Python.  pip install fastavro protobuf; apt-get install protobuf-compiler
"""
import base64, io, json, os, subprocess, sys, tempfile, importlib

import fastavro
from google.protobuf import descriptor_pb2

here = os.path.dirname(os.path.abspath(__file__))
os.chdir(here)

def load(name):
    with open(name) as f:
        return fastavro.parse_schema(json.load(f))

def avro_bytes(schema, record):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()

def framed(schema_id, payload, indexes=None):
    head = b"\x00" + schema_id.to_bytes(4, "big")
    if indexes is not None:
        if indexes == [0]:
            head += b"\x00"
        else:
            head += zigzag(len(indexes)) + b"".join(zigzag(i) for i in indexes)
    return head + payload

def zigzag(n):
    n = (n << 1) ^ (n >> 63)
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

MISSING = {"missing": True}
cases = []

# ---- Avro ---------------------------------------------------------------
v1, v2, badkey = load("event_v1.avsc"), load("event_v2.avsc"), load("event_badkey.avsc")

a1 = {"user": {"id": "u1", "country": "SE"}, "ts": 1767225600000, "kind": "BUY", "amount": 12.5,
      "tags": ["a", "b"], "attrs": {"x": "y"}, "payload": b"\x00\x01", "count": 7, "uid_old": "old-1",
      "flag": True, "score": 1.5}
cases.append({"name": "avro v1 full", "format": "avro", "hex": framed(1, avro_bytes(v1, a1)).hex(),
              "key": "u1", "ts": 1767225600000,
              "fields": {"kind": "BUY", "amount": 12.5, "count": 7, "uid_old": "old-1", "user.country": "SE",
                         "added": MISSING, "flag": True, "score": 1.5}})
a2 = dict(a1, user={"id": "\u00e9\U0001F600", "country": None}, amount=None, kind="VIEW", tags=[], attrs={},
          ts=1767225601000)
cases.append({"name": "avro v1 nulls and unicode", "format": "avro", "hex": framed(1, avro_bytes(v1, a2)).hex(),
              "key": "\u00e9\U0001F600", "ts": 1767225601000,
              "fields": {"kind": "VIEW", "amount": None, "user.country": None, "count": 7}})
# v2: a field added, one removed, one renamed with an alias, unions reordered, micros.
b1 = {"added": 5, "user": {"country": "DE", "id": "u2"}, "ts": 1767225600123456, "kind": "REFUND",
      "amount": 3.25, "uid_new": "new-2", "tags": ["t"], "flag": False, "score": 0.25}
cases.append({"name": "avro v2 evolution", "format": "avro", "hex": framed(2, avro_bytes(v2, b1)).hex(),
              "key": "u2", "ts": 1767225600123,
              "fields": {"kind": "REFUND", "amount": 3.25, "count": MISSING, "uid_old": "new-2", "user.country": "DE",
                         "added": 5, "flag": False, "score": 0.25}})
b2 = dict(b1, added=None, user={"country": None, "id": "u3"}, amount=None)
cases.append({"name": "avro v2 null branches", "format": "avro", "hex": framed(2, avro_bytes(v2, b2)).hex(),
              "key": "u3", "ts": 1767225600123,
              "fields": {"amount": None, "added": None, "user.country": None}})
# Bad input.
good = avro_bytes(v1, a1)
cases.append({"name": "avro bad magic", "format": "avro", "hex": (b"\x01" + framed(1, good)[1:]).hex(), "reason": "bad_magic"})
cases.append({"name": "avro short header", "format": "avro", "hex": b"\x00\x00\x00".hex(), "reason": "truncated"})
cases.append({"name": "avro truncated", "format": "avro", "hex": framed(1, good[: len(good) // 2]).hex(), "reason": "truncated"})
cases.append({"name": "avro bad union branch", "format": "avro",
              "hex": framed(1, b"\x04u1\x08" + good[6:]).hex(), "reason": "truncated"})
cases.append({"name": "avro unknown schema (404)", "format": "avro", "hex": framed(3, good).hex(), "reason": "unknown_schema"})
cases.append({"name": "avro schema never fetched", "format": "avro", "hex": framed(99, good).hex(), "reason": "unknown_schema"})
cases.append({"name": "avro key of unusable type", "format": "avro",
              "hex": framed(4, avro_bytes(badkey, {"user": {"id": True}, "ts": 5})).hex(), "reason": "schema_mismatch"})

# Object container files for replay: the clickstream sample as Avro.
click = load("clickstream.avsc")
with open("../../../Topologies/clickstream.sample.jsonl") as f:
    rows = []
    for l in f:
        try:
            r = json.loads(l)
        except ValueError:
            continue  # the sample's deliberately broken line
        for k in ("ts", "page", "price"):
            r.setdefault(k, None)
        rows.append(r)
for codec in ("null", "deflate"):
    with open(f"clickstream.{codec}.avro", "wb") as f:
        fastavro.writer(f, click, rows, codec=codec, sync_interval=200)

# ---- Protobuf -----------------------------------------------------------
tmp = tempfile.mkdtemp()
for proto, desc in (("event.proto", "event.desc"), ("event_v2.proto", "event_v2.desc")):
    subprocess.check_call(["protoc", "-I.", f"--descriptor_set_out={desc}", "--include_imports", proto])
subprocess.check_call(["protoc", "-I.", f"--python_out={tmp}", "event.proto"])
sys.path.insert(0, tmp)
pb = importlib.import_module("event_pb2")

def registry_files(desc):
    s = descriptor_pb2.FileDescriptorSet()
    with open(desc, "rb") as f:
        s.ParseFromString(f.read())
    return {fd.name: base64.b64encode(fd.SerializeToString()).decode() for fd in s.file}

e = pb.Event()
e.user.id = "u1"; e.user.country = "SE"
e.ts.seconds = 1767225600; e.ts.nanos = 5_000_000
e.kind = pb.BUY; e.amount = 12.5; e.tags.extend(["a", "b"]); e.attrs["x"] = "y"; e.payload = b"\x00\x01"
e.count = 7; e.order_id = "o-1"; e.delta = -3; e.big = 2**63 + 4096; e.flag = True; e.score = 1.5
e.inner.note = "n"
full = e.SerializeToString()
cases.append({"name": "protobuf full", "format": "protobuf", "hex": framed(11, full, [1]).hex(),
              "key": "u1", "ts": 1767225600005,
              "fields": {"kind": "BUY", "amount": 12.5, "count": 7, "order_id": "o-1", "session_no": MISSING,
                         "delta": -3, "big": float(2**63 + 4096), "flag": True, "score": 1.5, "inner.note": "n",
                         "user.country": "SE"}})
e2 = pb.Event()
e2.user.id = "u2"; e2.ts.seconds = 1767225601; e2.session_no = 42
cases.append({"name": "protobuf defaults and presence", "format": "protobuf", "hex": framed(11, e2.SerializeToString(), [1]).hex(),
              "key": "u2", "ts": 1767225601000,
              "fields": {"kind": "KIND_UNSPECIFIED", "amount": MISSING, "count": 0, "order_id": MISSING, "session_no": 42,
                         "delta": 0, "flag": False, "inner.note": MISSING, "user.country": MISSING}})
# v2 in a pool of its own (its file name is event_v2.proto).
from google.protobuf import descriptor_pool, message_factory
pool = descriptor_pool.DescriptorPool()
v2set = descriptor_pb2.FileDescriptorSet()
with open("event_v2.desc", "rb") as f:
    v2set.ParseFromString(f.read())
for fd in v2set.file:
    pool.Add(fd)
Event2 = message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Event"))
e3 = Event2()
e3.channel = "web"; e3.user.id = "u3"; e3.ts.seconds = 1767225602; e3.kind = 4; e3.change = 9
cases.append({"name": "protobuf v2 evolution", "format": "protobuf", "hex": framed(12, e3.SerializeToString(), [1]).hex(),
              "key": "u3", "ts": 1767225602000,
              "fields": {"kind": "REFUND", "count": MISSING, "delta": MISSING, "order_id": MISSING, "amount": MISSING}})
cases.append({"name": "protobuf bad magic", "format": "protobuf", "hex": (b"\x07" + framed(11, full, [1])[1:]).hex(), "reason": "bad_magic"})
cases.append({"name": "protobuf truncated", "format": "protobuf", "hex": framed(11, full[:-3], [1]).hex(), "reason": "truncated"})
cases.append({"name": "protobuf unknown message index", "format": "protobuf", "hex": framed(11, full, [7]).hex(), "reason": "unknown_schema"})
cases.append({"name": "protobuf unknown schema (404)", "format": "protobuf", "hex": framed(13, full, [1]).hex(), "reason": "unknown_schema"})
# A bare message (no framing) for the fixed-descriptor mode.
fixed = {"name": "protobuf bare", "hex": full.hex(), "key": "u1", "ts": 1767225600005}

with open("cases.json", "w") as f:
    json.dump({"cases": cases, "bare_protobuf": fixed,
               "registry": {"event.proto": registry_files("event.desc"),
                            "event_v2.proto": registry_files("event_v2.desc")}}, f, indent=1, ensure_ascii=False)
print(f"{len(cases)} cases")
