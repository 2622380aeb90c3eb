# Compares each converted folder's model.safetensors (mamba-codesign convert) with the tensors PyTorch saved
# (expected.pt from make_checkpoints.py), bit for bit. Usage: python3 compare.py CHECKPOINT_DIR CONVERTED_DIR
import json, os, struct, sys

import torch

ck, conv = sys.argv[1], sys.argv[2]
types = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
expected = torch.load(os.path.join(ck, "expected.pt"))
failures = 0
for name, tensors in sorted(expected.items()):
    b = open(os.path.join(conv, name, "model.safetensors"), "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    got_names = sorted(k for k in header if k != "__metadata__")
    same = got_names == sorted(tensors)
    for t_name, t in tensors.items():
        if t_name not in header:
            continue
        v = header[t_name]
        s, e = v["data_offsets"]
        got = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=types[v["dtype"]]).reshape(v["shape"])
        same = same and got.dtype == t.dtype and torch.equal(got, t)
    failures += not same
    print(f"{name}: {len(tensors)} tensors {'bit-identical' if same else 'DIFFER'} ({header[got_names[0]]['dtype']})")
print("compare", "passed" if failures == 0 else f"FAILED ({failures})")
sys.exit(1 if failures else 0)
