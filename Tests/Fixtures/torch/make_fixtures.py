#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures of Tests/KernelsTests/PyTorchFileTests.swift.

Run from the repository root after `swift build -c release` (the names and shapes come from
mge itself, so they are exactly mge's state-dict names):

    /path/to/venv/bin/python Tests/Fixtures/torch/make_fixtures.py [--tag torch2] [--mge .build/release/mge-script]

Needs torch and numpy; the tests that read the files need no Python. Every file is written
zstd-compressed (`zstd -19`) to keep the fixtures small. For each of the five models:

  <model>.zip.pt          torch.save(state_dict)                        (the zip format)
  <model>.legacy.pt       torch.save(..., _use_new_zipfile_serialization=False)
  <model>.reference.safetensors   the same tensors, written here by a plain safetensors writer

with random weights (multiples of 1/64) of which all but DENSITY are zeroed in the conv/linear weights (a pruned
checkpoint, for masks_from_weights), random BN statistics, num_batches_tracked = 7 (Int64).
ResNet-20 also in float16 / bfloat16 / float64 (values exact in all: one reference), with a transposed
(non-contiguous) weight and a weight at a storage offset, wrapped as
{'epoch', 'state_dict' with a DataParallel 'module.' prefix, 'optimizer'}, and pickled with
protocol 4. small.{zip,legacy}.pt hold one tensor of each element type (the fuzz tests' seeds). Files that must be
refused: a pickle whose __reduce__ calls os.system (zip and legacy), and a whole pickled
nn.Module. manifest.json records the torch version, each model's kept-weight count, and that
torch.load(weights_only=True) read back a file mge's save_weights wrote (with --mge).

With `--tag` the ResNet-20 zip/legacy pair is also written as resnet20.<tag>.{zip,legacy}.pt, so
a second torch version's files can sit beside the first's (run the script with that venv and
`--only-versioned`).
"""
import argparse, collections, json, os, struct, subprocess, sys, tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from torch_reference import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ["conv6", "resnet20", "resnet32", "wrn28_2", "mobilenetv2"]
DENSITY = 0.005  # kept fraction of every conv/linear weight
MARKER = "/tmp/mge-pwned-marker"


def zstd(path):
    subprocess.run(["zstd", "-q", "-19", "-f", "--rm", path], check=True)


def safetensors_shapes(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    entries = sorted(((v["data_offsets"][0], k, v["shape"]) for k, v in header.items() if k != "__metadata__"))
    return [(k, tuple(s)) for _, k, s in entries]


def mge_names_and_shapes(mge, model, tmp):
    script, out = os.path.join(tmp, model + ".mge"), os.path.join(tmp, model + ".safetensors")
    with open(script, "w") as f:
        f.write(f'save_weights({model}(), "{out}")\n')
    subprocess.run([mge, script], check=True, stdout=subprocess.DEVNULL)
    return safetensors_shapes(out)


def state_dict(shapes, seed):
    """Random tensors for mge's names, conv/linear weights pruned to DENSITY, with PyTorch's
    num_batches_tracked after each running_var."""
    g = torch.Generator().manual_seed(seed)
    sd, kept = collections.OrderedDict(), 0
    for name, shape in shapes:
        # Nonzero multiples of 1/64 below 4: exact in float16 and bfloat16 too, and they compress.
        magnitude = torch.randint(1, 256, shape, generator=g).float() / 64
        sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
        t = magnitude if name.endswith("running_var") else magnitude * sign
        if name.endswith(".weight") and len(shape) in (2, 4):
            keep = torch.rand(shape, generator=g) < DENSITY
            t = torch.where(keep, t, torch.zeros(()))  # +0.0 (a product with False would give -0.0)
            kept += int(keep.sum())
        sd[name] = t
        if name.endswith("running_var"):
            sd[name[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    return sd, kept


def reference(sd, path):
    write_safetensors(path, {k: v.numpy() for k, v in sd.items()})
    zstd(path)


def save(obj, path, legacy=False, protocol=2):
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy, pickle_protocol=protocol)
    zstd(path)


class Evil:
    """What a malicious checkpoint holds: unpickling it in Python runs os.system."""
    def __reduce__(self):
        return (os.system, ("touch " + MARKER,))


def check_torch_reads_mge(mge, shapes, tmp, manifest):
    """torch reads back what mge writes: the reference loaded into mge, save_weights to .pt,
    torch.load(weights_only=True) gives the same names, order, shapes, dtypes and values."""
    written = os.path.join(tmp, "mge-written.pt")
    script = os.path.join(tmp, "roundtrip.mge")
    ref = os.path.join(tmp, "ref.safetensors")
    expected, _ = state_dict(shapes["resnet20"], seed=1)
    write_safetensors(ref, {k: v.numpy() for k, v in expected.items()})
    with open(script, "w") as f:
        f.write(f'net = resnet20()\nload_weights(net, "{ref}")\nsave_weights(net, "{written}")\n')
    subprocess.run([mge, script], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    back = torch.load(written, weights_only=True)
    assert isinstance(back, collections.OrderedDict), type(back)
    assert list(back.keys()) == list(expected.keys()), "names or order differ"
    for k, v in expected.items():
        assert back[k].dtype == (torch.int64 if k.endswith("num_batches_tracked") else torch.float32), (k, back[k].dtype)
        assert back[k].shape == v.shape, (k, back[k].shape, v.shape)
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(back[k], v), k
    manifest.setdefault("mge_written_read_by_torch", {})[torch.__version__] = (
        "torch.load(weights_only=True) read mge's resnet20 .pt: same names, order, shapes, dtypes, values")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mge", default=".build/release/mge-script")
    ap.add_argument("--tag", default=None)
    ap.add_argument("--only-versioned", action="store_true")
    args = ap.parse_args()
    manifest_path = os.path.join(HERE, "manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {}
    with tempfile.TemporaryDirectory() as tmp:
        shapes = {m: mge_names_and_shapes(args.mge, m, tmp) for m in MODELS}
        if args.only_versioned:
            sd, _ = state_dict(shapes["resnet20"], seed=1)
            save(sd, os.path.join(HERE, f"resnet20.{args.tag}.zip.pt"))
            save(sd, os.path.join(HERE, f"resnet20.{args.tag}.legacy.pt"), legacy=True)
            manifest.setdefault("versioned", {})[args.tag] = torch.__version__
            check_torch_reads_mge(args.mge, shapes, tmp, manifest)
            json.dump(manifest, open(manifest_path, "w"), indent=1, sort_keys=True)
            return
        manifest.update({"torch": torch.__version__, "density": DENSITY, "kept": {}})
        for i, model in enumerate(MODELS):
            sd, kept = state_dict(shapes[model], seed=i if model != "resnet20" else 1)
            manifest["kept"][model] = kept
            save(sd, os.path.join(HERE, f"{model}.zip.pt"))
            save(sd, os.path.join(HERE, f"{model}.legacy.pt"), legacy=True)
            reference(sd, os.path.join(HERE, f"{model}.reference.safetensors"))
            if model != "resnet20":
                continue
            # The values are exact in every one of these types: the float32 reference holds for all.
            for dtype, tag in [(torch.float16, "f16"), (torch.bfloat16, "bf16"), (torch.float64, "f64")]:
                cast = collections.OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())
                assert all(torch.equal(cast[k].float(), v) for k, v in sd.items() if v.is_floating_point())
                save(cast, os.path.join(HERE, f"resnet20.{tag}.zip.pt"))
            # Non-contiguous and offset storages, under a wrapper with a DataParallel prefix.
            odd = collections.OrderedDict()
            for k, v in sd.items():
                if v.dim() == 2 and k.endswith(".weight"):
                    v = v.t().contiguous().t()  # strides (1, rows)
                elif k == "conv1.weight":
                    big = torch.zeros(v.numel() + 13)
                    big[13:] = v.flatten()
                    v = big[13:].view(v.shape)  # storage offset 13 in a larger storage
                odd["module." + k] = v
            wrapped = {"epoch": 3, "state_dict": odd, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}}
            save(wrapped, os.path.join(HERE, "resnet20.wrapped.zip.pt"))
            save(wrapped, os.path.join(HERE, "resnet20.wrapped.legacy.pt"), legacy=True)
        # Pickle protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL) instead of torch's default 2.
        save(state_dict(shapes["resnet20"], seed=1)[0], os.path.join(HERE, "resnet20.protocol4.zip.pt"), protocol=4)
        # A small file of every element type, for the fuzz tests (small.reference.json: its values).
        w = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4
        small = collections.OrderedDict([
            ("w", w), ("wt", w.t()), ("h", torch.tensor([0.5, -2.0], dtype=torch.float16)),
            ("b", torch.tensor([1.5, -3.0], dtype=torch.bfloat16)), ("d", torch.tensor([0.25], dtype=torch.float64)),
            ("n", torch.tensor(7)), ("i", torch.tensor([-1, 2], dtype=torch.int32)), ("m", torch.tensor([True, False, True])),
        ])
        # As model.state_dict() has it: pickled with BUILD setting the OrderedDict's __dict__.
        small._metadata = collections.OrderedDict([("", {"version": 1})])
        save(small, os.path.join(HERE, "small.zip.pt"))
        save(small, os.path.join(HERE, "small.legacy.pt"), legacy=True)
        manifest["small"] = {k: [list(v.shape), [float(x) for x in v.flatten().tolist()]] for k, v in small.items()}
        # Files that must be refused, nothing run.
        save({"conv1.weight": Evil()}, os.path.join(HERE, "malicious.zip.pt"))
        save({"conv1.weight": Evil()}, os.path.join(HERE, "malicious.legacy.pt"), legacy=True)
        save(torch.nn.Linear(2, 2), os.path.join(HERE, "module.zip.pt"))
        if os.path.exists(MARKER):
            sys.exit(f"{MARKER} exists: remove it, the tests check that reading the malicious files does not create it")
        check_torch_reads_mge(args.mge, shapes, tmp, manifest)
    json.dump(manifest, open(manifest_path, "w"), indent=1, sort_keys=True)
    print("fixtures written; torch", torch.__version__)


if __name__ == "__main__":
    main()
