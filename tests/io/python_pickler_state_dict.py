# Writes a state dict through Python's own pickler exactly as torch.save drives it — Pickler(protocol),
# persistent_id returning ('storage', <storage class>, key, 'cpu', numel), each tensor reduced to
# torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict()), the dict an
# OrderedDict with a _metadata attribute — into torch.save's zip layout, on a machine without PyTorch: a
# stand-in `torch` module provides the names the pickle refers to (they are only named, never called, by the
# reader). Used by tests/io/pytorch_checkpoint_test.cpp; real torch.save files are checked in
# docs/results/2026-12-08a_pytorch_checkpoints/.
# Usage: python3 python_pickler_state_dict.py OUT.bin PROTOCOL
import collections, io, pickle, struct, sys, types, zipfile

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
torch._utils = utils
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils


def _rebuild_tensor_v2(*args):
    raise RuntimeError("never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
for name in ("FloatStorage", "BFloat16Storage", "LongStorage"):
    cls = type(name, (), {"__module__": "torch"})
    setattr(torch, name, cls)


class Storage:
    def __init__(self, cls, fmt, values):
        self.cls, self.data, self.numel = cls, struct.pack("<%d%s" % (len(values), fmt), *values), len(values)


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce_ex__(self, protocol):
        return (utils._rebuild_tensor_v2, self.args)


def bf16(values):  # the top halves of float32s that are exact in bfloat16
    return [struct.unpack("<I", struct.pack("<f", v))[0] >> 16 for v in values]


weights = Storage(torch.FloatStorage, "f", [float(i) / 8 for i in range(12)])
state = collections.OrderedDict()
state["a.weight"] = Tensor(weights, 0, (3, 4), (4, 1))
state["a.weight_t"] = Tensor(weights, 0, (4, 3), (1, 4))  # the same storage, transposed
state["a.tail"] = Tensor(weights, 8, (4,), (1,))
state["b.bf16"] = Tensor(Storage(torch.BFloat16Storage, "H", bf16([1.5, -2.0, 0.25])), 0, (3,), (1,))
state["c.scalar"] = Tensor(Storage(torch.LongStorage, "q", [-7]), 0, (), ())
state._metadata = collections.OrderedDict([("", {"version": 1})])

keys = {}


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            key = keys.setdefault(id(obj), (str(len(keys)), obj))[0]
            return ("storage", obj.cls, key, "cpu", obj.numel)
        return None


buf = io.BytesIO()
Pickler(buf, protocol=int(sys.argv[2])).dump(state)
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", buf.getvalue())
    z.writestr("archive/byteorder", "little")
    for key, storage in keys.values():
        z.writestr("archive/data/" + key, storage.data)
    z.writestr("archive/version", "3\n")
