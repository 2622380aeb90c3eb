# Reads a state dict written by io::save_pytorch_checkpoint with Python's own unpickler, on a machine without
# PyTorch: stand-ins for the names the pickle refers to rebuild each tensor as (shape, values in C order), and
# the result is printed as JSON for tests/io/pytorch_checkpoint_test.cpp to compare. A real torch.load is
# checked in docs/results/2026-12-08a_pytorch_checkpoints/.
# Usage: python3 python_unpickle_state_dict.py FILE.bin
import collections, io, json, pickle, struct, sys, zipfile

FORMATS = {"FloatStorage": ("f", 4), "DoubleStorage": ("d", 8), "HalfStorage": ("e", 2),
           "BFloat16Storage": ("bf16", 2), "LongStorage": ("q", 8), "IntStorage": ("i", 4)}
z = zipfile.ZipFile(sys.argv[1])
prefix = z.namelist()[0].split("/")[0] + "/"
assert z.read(prefix + "byteorder") == b"little"


class StorageClass:
    def __init__(self, name):
        self.name = name


def storage_values(cls, key, numel):
    data = z.read(prefix + "data/" + key)
    fmt, size = FORMATS[cls.name]
    assert len(data) == numel * size, (key, len(data), numel)
    if fmt == "bf16":
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in struct.unpack("<%dH" % numel, data)]
    return list(struct.unpack("<%d%s" % (numel, fmt), data))


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, *metadata):
    assert isinstance(hooks, collections.OrderedDict) and requires_grad is False
    values = []

    def walk(dim, pos):
        if dim == len(size):
            values.append(storage[pos])
            return
        for i in range(size[dim]):
            walk(dim + 1, pos + i * stride[dim])

    walk(0, offset)
    return {"shape": list(size), "values": values}


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor_v2
        if module == "torch" and name in FORMATS:
            return StorageClass(name)
        raise pickle.UnpicklingError("unexpected global %s.%s" % (module, name))

    def persistent_load(self, pid):
        kind, cls, key, location, numel = pid
        assert kind == "storage" and location == "cpu"
        return storage_values(cls, key, numel)


state = Unpickler(io.BytesIO(z.read(prefix + "data.pkl"))).load()
assert isinstance(state, collections.OrderedDict)
print(json.dumps({"names": list(state), "tensors": state}))
