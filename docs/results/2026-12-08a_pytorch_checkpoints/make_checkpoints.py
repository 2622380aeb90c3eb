# Writes real torch.save checkpoints of the HF fixture (../shared/fixtures/hf_mamba_tiny) on a machine with
# PyTorch, for call.sh to read back with mamba-codesign. The mamba-ssm folders are what mamba-ssm's
# MambaLMHeadModel.save_pretrained writes — torch.save(model.state_dict()) of its module tree (rebuilt here,
# parameters only: MambaLMHeadModel > MixerModel > Block > Mamba, the head tied to the embedding) and
# json.dump of its MambaConfig. Usage: python3 make_checkpoints.py FIXTURE_DIR OUT_DIR
import copy, json, os, struct, sys

import torch
import torch.nn as nn

fixture, out = sys.argv[1], sys.argv[2]


def read_safetensors(path):  # the format's header and raw bytes; no safetensors package needed
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    types = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}
    tensors = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        s, e = v["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=types[v["dtype"]]).reshape(v["shape"])
    return tensors


hf = read_safetensors(os.path.join(fixture, "model.safetensors"))
cfg = json.load(open(os.path.join(fixture, "config.json")))
D, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
N, R, E, K = cfg["state_size"], cfg["time_step_rank"], cfg["intermediate_size"], cfg["conv_kernel"]


class RMSNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(D))


class Mamba(nn.Module):
    def __init__(self):
        super().__init__()
        self.in_proj = nn.Linear(D, 2 * E, bias=False)
        self.conv1d = nn.Conv1d(E, E, K, groups=E, padding=K - 1, bias=True)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.A_log = nn.Parameter(torch.zeros(E, N))
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, D, bias=False)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.mixer = Mamba()
        self.norm = RMSNorm()


class MixerModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(V, D)
        self.layers = nn.ModuleList([Block() for _ in range(L)])
        self.norm_f = RMSNorm()


class MambaLMHeadModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = MixerModel()
        self.lm_head = nn.Linear(D, V, bias=False)
        self.lm_head.weight = self.backbone.embedding.weight  # tie_weights()


model = MambaLMHeadModel()
renamed = {k.replace("backbone.embeddings.", "backbone.embedding."): v for k, v in hf.items()}
missing, unexpected = model.load_state_dict(renamed, strict=False)
assert list(missing) == ["lm_head.weight"] and not unexpected, (missing, unexpected)
ssm_config = {"d_model": D, "d_intermediate": 0, "n_layer": L, "vocab_size": V,
              "ssm_cfg": {"layer": "Mamba1", "d_state": N, "d_conv": K, "expand": E // D, "dt_rank": R},
              "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": True, "residual_in_fp32": True,
              "fused_add_norm": True, "pad_vocab_size_multiple": 8, "tie_embeddings": True}


def save_ssm(name, m, **kw):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    torch.save(m.state_dict(), os.path.join(d, "pytorch_model.bin"), **kw)  # MambaLMHeadModel.save_pretrained
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(ssm_config, f, indent=4)
    return m.state_dict()


expected = {"ssm_f32": save_ssm("ssm_f32", model),
            "ssm_p4": save_ssm("ssm_p4", model, pickle_protocol=4),
            "ssm_bf16": save_ssm("ssm_bf16", copy.deepcopy(model).to(torch.bfloat16))}
save_ssm("ssm_legacy", model, _use_new_zipfile_serialization=False)

# Hugging Face's names in pytorch_model.bin shards with their index (transformers' save_pretrained with
# safe_serialization=False and a small max_shard_size), and its config.json.
d = os.path.join(out, "hf_sharded")
os.makedirs(d, exist_ok=True)
names = sorted(hf)
shards = {"pytorch_model-00001-of-00002.bin": names[:len(names) // 2],
          "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
for f, ns in shards.items():
    torch.save({n: hf[n].clone() for n in ns}, os.path.join(d, f))
with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": sum(t.numel() * t.element_size() for t in hf.values())},
               "weight_map": {n: f for f, ns in shards.items() for n in ns}}, f, indent=2)
with open(os.path.join(d, "config.json"), "w") as f:
    json.dump(cfg, f, indent=2)
expected["hf_sharded"] = hf

# What each folder must read as: every tensor under our (Hugging Face's) name, bit for bit.
torch.save({k: {n.replace("backbone.embedding.", "backbone.embeddings."): t for n, t in v.items() if n != "lm_head.weight"}
            for k, v in expected.items()}, os.path.join(out, "expected.pt"))
print("torch", torch.__version__, "wrote", sorted(os.listdir(out)))
