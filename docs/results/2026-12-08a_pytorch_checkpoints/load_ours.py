# Loads the mamba-ssm folder `mamba-codesign convert --format mamba-ssm` wrote from the HF fixture with PyTorch's
# own torch.load (weights_only=True) and checks it is what mamba-ssm's from_pretrained needs: exactly
# MambaLMHeadModel's state-dict keys (the embedding as backbone.embedding.weight, lm_head.weight sharing its
# storage), every tensor bit-identical to the fixture's, a config with MambaConfig's fields.
# Usage: python3 load_ours.py FIXTURE_DIR OUR_DIR
import json, os, struct, sys

import torch

fixture, ours = sys.argv[1], sys.argv[2]
b = open(os.path.join(fixture, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
hf = {}
for name, v in header.items():
    if name != "__metadata__":
        s, e = v["data_offsets"]
        hf[name] = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=torch.float32).reshape(v["shape"])
want = {k.replace("backbone.embeddings.", "backbone.embedding."): t for k, t in hf.items()}
want["lm_head.weight"] = want["backbone.embedding.weight"]
sd = torch.load(os.path.join(ours, "pytorch_model.bin"), weights_only=True)
ok = type(sd).__name__ == "OrderedDict" and sorted(sd) == sorted(want)
ok = ok and all(sd[k].dtype == torch.float32 and torch.equal(sd[k], t) for k, t in want.items())
shared = sd["lm_head.weight"].untyped_storage().data_ptr() == sd["backbone.embedding.weight"].untyped_storage().data_ptr()
config = json.load(open(os.path.join(ours, "config.json")))
fields = {"d_model", "d_intermediate", "n_layer", "vocab_size", "ssm_cfg", "attn_layer_idx", "attn_cfg", "rms_norm",
          "residual_in_fp32", "fused_add_norm", "pad_vocab_size_multiple", "tie_embeddings"}
print(f"torch.load: {len(sd)} tensors, keys and values {'as mamba-ssm expects' if ok else 'DIFFER'}; "
      f"tied head {'shares' if shared else 'does NOT share'} the embedding's storage; config fields "
      f"{'= MambaConfig' if set(config) == fields else 'DIFFER: ' + str(sorted(set(config) ^ fields))}")
print("load_ours", "passed" if ok and shared and set(config) == fields else "FAILED")
sys.exit(0 if ok and shared and set(config) == fields else 1)
