"""Model files: folkrnn-lens checkpoints (safetensors, weights plus a JSON header of
config, vocabulary and training facts), folk-rnn's original pickle read by a loader
that admits numpy arrays only, and loading either onto a device.

Apart from ``folkrnn.py`` so that the model reads as one file, and so that what
guards a downloaded file (the restricted unpickler) is read on its own.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from folkrnn_lens.model.folkrnn import FolkRNN, FolkRNNConfig, _is_int

PICKLE_LAYER_ARRAYS = (
    "W_xi", "W_hi", "b_i", "W_xf", "W_hf", "b_f",
    "W_xc", "W_hc", "b_c", "W_xo", "W_ho", "b_o",
    "cell_init", "hid_init",
)  # fmt: skip
"""The 14 arrays of one Lasagne LSTMLayer in folk-rnn's pickle, in order."""


class CheckpointError(ValueError):
    """A model file that is not what it claims to be."""


CHECKPOINT_FORMAT = "folkrnn-lens/1"


# ---- safetensors checkpoints ------------------------------------------------------------


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(model: FolkRNN, path: str | Path, extra: dict | None = None) -> None:
    """Weights as float32 safetensors; vocabulary and config in its metadata."""
    from safetensors.torch import save_file

    tensors = {
        name: tensor.detach().float().cpu().contiguous() for name, tensor in model.state_dict().items()
    }
    # One metadata key: safetensors writes several in no fixed order, and the
    # file's bytes (its SHA-256 in every table) must not change between runs.
    header = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(model.config),
        "vocab": model.vocab,
        "extra": extra or {},
    }
    metadata = {"folkrnn_lens": json.dumps(header)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def _checkpoint_header(path: str | Path, handle) -> dict:
    try:
        header = json.loads((handle.metadata() or {}).get("folkrnn_lens", "{}"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: its folkrnn-lens metadata is not JSON: {error}") from error
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a folkrnn-lens checkpoint (no '{CHECKPOINT_FORMAT}' metadata)")
    return header


@contextmanager
def _open_safetensors(path: str | Path):
    """safe_open, whose errors (a truncated, empty or damaged file) name no file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            yield handle
    except SafetensorError as error:
        raise CheckpointError(
            f"{path}: not a complete checkpoint (truncated or damaged safetensors file: {error})"
        ) from error


def checkpoint_header(path: str | Path) -> dict:
    """A checkpoint's metadata: ``format``, ``config``, ``vocab`` and ``extra`` (for a
    trained model, the facts of its training run), without loading the weights."""
    with _open_safetensors(path) as handle:
        return _checkpoint_header(path, handle)


def load_checkpoint(path: str | Path) -> FolkRNN:
    with _open_safetensors(path) as handle:
        header = _checkpoint_header(path, handle)
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    try:
        config = FolkRNNConfig(**header["config"])
        model = FolkRNN(config, header["vocab"], initialise=False)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its metadata does not describe a model: {error}") from error
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        detail = " ".join(str(error).split())  # torch's message, on one line
        raise CheckpointError(f"{path}: weights do not fit the stored config: {detail}") from error
    return model.eval()


# ---- folk-rnn's original pickle ------------------------------------------------------------

# A pickle is a program: its GLOBAL opcodes name any importable callable and REDUCE
# calls it, so plain pickle.load on a downloaded model file runs whatever the file
# says. folk-rnn's file holds dicts, lists, strings, numbers and numpy arrays, and
# rebuilding those needs only the globals below (Python 2 wrote numpy.core, numpy 2
# writes numpy._core, Python 3 writes bytes under protocols 0-2 as _codecs.encode;
# ndarray and dtype define __reduce__, so copy_reg._reconstructor never appears).
# Each maps to a guard that checks its arguments before calling numpy.

_NUMPY_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's own, wherever this numpy keeps it
_NUMPY_SCALAR = np.float32(0).__reduce__()[0]


class _Refusal(pickle.UnpicklingError):
    """A pickle that asks for something a folk-rnn model file never holds."""


def _dtype(spec, align=False, copy=False) -> np.dtype:
    """numpy.dtype for a type code ('f4', '<i8'), never for a Python class or objects."""
    if not isinstance(spec, str):
        raise _Refusal(f"numpy.dtype is given {type(spec).__name__} {spec!r}, not a type code")
    dtype = np.dtype(spec, bool(align), bool(copy))
    if dtype.hasobject:
        raise _Refusal(f"numpy.dtype {spec!r} holds Python objects")
    return dtype


def _reconstruct(subtype, shape, code) -> np.ndarray:
    """numpy's _reconstruct for a plain ndarray: numpy passes (ndarray, (0,), b'b') and
    fills the array in __setstate__; any other class would be instantiated."""
    if subtype is not np.ndarray or code not in ("b", b"b"):
        raise _Refusal(f"numpy's _reconstruct is given ({subtype!r}, {code!r}), not (numpy.ndarray, 'b')")
    if not isinstance(shape, tuple) or not all(type(n) is int for n in shape):
        raise _Refusal(f"numpy's _reconstruct is given the shape {shape!r}")
    return _NUMPY_RECONSTRUCT(np.ndarray, shape, code)


def _scalar(dtype, data):
    """A numpy scalar (np.float32(...)) from its raw bytes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, (bytes, str)):
        raise _Refusal(f"numpy's scalar is given ({dtype!r}, {type(data).__name__})")
    return _NUMPY_SCALAR(dtype, data)


def _latin1_bytes(text, encoding) -> bytes:
    """What Python 3 writes a bytes object as under pickle protocols 0 to 2."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refusal(f"_codecs.encode is given ({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,  # only ever an argument of _reconstruct
    ("numpy", "dtype"): _dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("_codecs", "encode"): _latin1_bytes,
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Loads dicts, lists, tuples, strings, numbers and numpy arrays; refuses any other
    global when the pickle names it, before anything is called."""

    def __init__(self, stream, path: str | Path):
        super().__init__(stream, encoding="latin1")  # Python 2's byte strings as str
        self.path = path

    def find_class(self, module: str, name: str):
        admitted = _PICKLE_GLOBALS.get((module, name))
        if admitted is None:
            raise CheckpointError(
                f"{self.path}: refuses to load: the pickle asks for the global '{module}.{name}', which a "
                "folk-rnn model file never holds; a pickle can run any code it names, so only numpy "
                "arrays, dicts, lists, strings and numbers are admitted"
            )
        return admitted


def _float32_arrays(path, values) -> list[np.ndarray]:
    if not isinstance(values, (list, tuple)) or not all(
        isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in values
    ):
        raise CheckpointError(f"{path}: param_values is not a list of numeric arrays")
    return [v.astype(np.float32, copy=False) for v in values]


def load_folkrnn_pickle(path: str | Path) -> FolkRNN:
    """The original folk-rnn v2 model: a Python-2 pickle of a dict with ``token2idx``
    and ``param_values``, 45 Lasagne arrays (docs/specification.md): [0] the identity embedding,
    14 arrays per LSTM layer (PICKLE_LAYER_ARRAYS), then W_out and b_out. Read by
    _ArraysOnlyUnpickler, so a pickle that names anything else runs nothing."""
    with open(path, "rb") as stream:
        try:
            data = _ArraysOnlyUnpickler(stream, path).load()
        except CheckpointError:
            raise
        except _Refusal as error:
            raise CheckpointError(f"{path}: refuses to load: {error}") from error
        except Exception as error:
            raise CheckpointError(f"{path}: not a readable pickle: {error}") from error
    if not isinstance(data, dict) or not {"token2idx", "param_values"} <= set(data):
        raise CheckpointError(f"{path}: expected a dict with 'token2idx' and 'param_values'")
    token2idx, params = data["token2idx"], _float32_arrays(path, data["param_values"])
    if not isinstance(token2idx, dict) or not all(
        isinstance(token, str) and _is_int(index) for token, index in token2idx.items()
    ):
        raise CheckpointError(f"{path}: token2idx is not a dict of tokens to indices")
    n_layers, rest = divmod(len(params) - 3, len(PICKLE_LAYER_ARRAYS))
    if rest or n_layers < 1:
        raise CheckpointError(f"{path}: {len(params)} parameter arrays do not make 1 + 14*L + 2")
    vocab = [None] * len(token2idx)
    for token, index in token2idx.items():
        if 0 <= index < len(vocab):
            vocab[index] = token
    if None in vocab:
        raise CheckpointError(f"{path}: token2idx indices are not 0..{len(vocab) - 1}")
    V, H = len(vocab), params[2].shape[0]
    try:
        model = FolkRNN(FolkRNNConfig(vocab_size=V, n_layers=n_layers, n_units=H), vocab, initialise=False)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from error
    expected = {"W_x": None, "W_h": (H, H), "b": (H,), "init": (1, H)}
    _check_shape(path, 0, params[0], (V, V))
    if not np.array_equal(params[0], np.eye(V, dtype=np.float32)):  # read takes rows of W_x instead
        raise CheckpointError(
            f"{path}: param_values[0] is not the one-hot (identity) embedding of folk-rnn v2; "
            "a model with a learned embedding is not supported"
        )
    with torch.no_grad():
        for layer in range(n_layers):
            arrays = dict(zip(PICKLE_LAYER_ARRAYS, params[1 + 14 * layer : 15 + 14 * layer]))
            n_in = V if layer == 0 else H
            for gate_pos, gate in enumerate("ifco"):
                offset = 1 + 14 * layer + 3 * gate_pos
                _check_shape(path, offset, arrays[f"W_x{gate}"], (n_in, H))
                _check_shape(path, offset + 1, arrays[f"W_h{gate}"], expected["W_h"])
                _check_shape(path, offset + 2, arrays[f"b_{gate}"], expected["b"])
                cols = slice(gate_pos * H, (gate_pos + 1) * H)
                model.W_x[layer][:, cols] = torch.from_numpy(arrays[f"W_x{gate}"])
                model.W_h[layer][:, cols] = torch.from_numpy(arrays[f"W_h{gate}"])
                model.b[layer][cols] = torch.from_numpy(arrays[f"b_{gate}"])
            _check_shape(path, 13 + 14 * layer, arrays["cell_init"], expected["init"])
            _check_shape(path, 14 + 14 * layer, arrays["hid_init"], expected["init"])
            model.c0[layer].copy_(torch.from_numpy(arrays["cell_init"][0]))
            model.h0[layer].copy_(torch.from_numpy(arrays["hid_init"][0]))
        _check_shape(path, len(params) - 2, params[-2], (H, V))
        _check_shape(path, len(params) - 1, params[-1], (V,))
        model.W_out.copy_(torch.from_numpy(params[-2]))
        model.b_out.copy_(torch.from_numpy(params[-1]))
    return model.eval()


def _check_shape(path, index: int, array: np.ndarray, shape: tuple) -> None:
    if array.shape != tuple(shape):
        raise CheckpointError(
            f"{path}: param_values[{index}] has shape {array.shape}, expected {tuple(shape)}"
        )


# ---- loading onto a device ------------------------------------------------------------------


def use_device(device: str, threads: int) -> torch.device:
    """torch set up as config asks: ``threads`` fixed (BLAS results may depend on
    it, so results are the same bytes however many jobs run) and ``device`` checked."""
    torch.set_num_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device 'cuda' but torch sees no CUDA device")
    return torch.device(device)


def load_model_on(path: str | Path, device: str, threads: int) -> FolkRNN:
    """load_model, on ``device`` with torch's ``threads`` set (use_device)."""
    return load_model(path).to(use_device(device, threads))


def load_model(path: str | Path) -> FolkRNN:
    """A folkrnn-lens checkpoint (.safetensors) or an original folk-rnn pickle (.pkl)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    if path.suffix == ".safetensors":
        return load_checkpoint(path)
    return load_folkrnn_pickle(path)
