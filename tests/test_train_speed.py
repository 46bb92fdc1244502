"""The fast SFT path is exact: packed batches, chunked cross-entropy, tokenisation cache, unchanged final loss."""

import json

import pytest
import torch
import torch.nn.functional as F

from langmix.config import TrainingConfig
from langmix.data.synth import make_items, to_example
from langmix.models import load_model, load_tokenizer
from langmix.packing import (PaddingFreeCollator, TokenRows, chunked_cross_entropy, register_varlen, sequence_losses,
                             tokenize_mixture)
from langmix.train import train

EXAMPLES = [to_example(i, lang) for i in make_items("math", "train", 12, 0) for lang in ("en", "sw")]


@pytest.fixture(scope="module")
def tok_model(tiny_model_cfg, tiny_model_path):
    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    model = load_model(tiny_model_cfg, tiny_model_path).float().eval()
    return tok, model


def _plain_loss(model, ids: list[int], labels: list[int]) -> torch.Tensor:
    """Summed next-token loss of one example alone, through the model's own forward and full logits."""
    logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
    return F.cross_entropy(logits.float(), torch.tensor(labels[1:]), ignore_index=-100, reduction="sum")


def test_packed_batch_gives_each_examples_loss_alone(tok_model, tmp_path):
    tok, model = tok_model
    mix = tokenize_mixture(tok, EXAMPLES[:6], 256, cache_dir=tmp_path)
    labels = mix.labels()
    batch = PaddingFreeCollator()([{"input_ids": i, "labels": lab} for i, lab in zip(mix.input_ids, labels)])
    assert batch["input_ids"].shape == (1, sum(len(i) for i in mix.input_ids))  # no padding at all
    model.set_attn_implementation(register_varlen())
    try:
        with torch.no_grad():
            packed = []
            for k, (a, b) in enumerate(zip(batch["seq_bounds"][:-1], batch["seq_bounds"][1:])):
                keep = (batch["loss_positions"] >= a) & (batch["loss_positions"] < b)
                sub = dict(batch, loss_positions=batch["loss_positions"][keep], loss_targets=batch["loss_targets"][keep])
                packed.append(sequence_losses(model, sub))
            whole = sequence_losses(model, batch)
    finally:
        model.set_attn_implementation("sdpa")
    with torch.no_grad():
        alone = [_plain_loss(model, i, lab) for i, lab in zip(mix.input_ids, labels)]
    torch.testing.assert_close(torch.stack(packed), torch.stack(alone), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(whole, torch.stack(alone).sum(), rtol=1e-5, atol=1e-5)


def test_collator_on_prepared_rows_equals_collator_on_ids_and_labels(tok_model, tmp_path):
    """The trainer's dataset (`TokenRows`) makes position ids and shifted labels once per example; collating its
    rows gives exactly what collating plain ids and labels gives."""
    tok, _ = tok_model
    mix = tokenize_mixture(tok, EXAMPLES[:5], 256, cache_dir=tmp_path)
    rows = TokenRows(mix)
    prepared = PaddingFreeCollator()([rows[i] for i in (3, 0, 4)])
    plain = PaddingFreeCollator()([{"input_ids": mix.input_ids[i], "labels": mix.labels()[i]} for i in (3, 0, 4)])
    assert prepared.keys() == plain.keys()
    for key in prepared:
        if isinstance(prepared[key], torch.Tensor):
            assert torch.equal(prepared[key], plain[key]), key
        else:
            assert prepared[key] == plain[key], key
    # written out from the token lists, independently of TokenRows: per example, labels with the first token
    # masked, positions from 0, and each position's next label within the example (-100 on its last token)
    labels = [[-100] + mix.labels()[i][1:] for i in (3, 0, 4)]
    assert prepared["input_ids"][0].tolist() == [t for i in (3, 0, 4) for t in mix.input_ids[i]]
    assert prepared["labels"][0].tolist() == [t for lab in labels for t in lab]
    assert prepared["position_ids"][0].tolist() == [p for lab in labels for p in range(len(lab))]
    assert prepared["shift_labels"][0].tolist() == [t for lab in labels for t in lab[1:] + [-100]]
    assert prepared["seq_bounds"] == (0, len(labels[0]), len(labels[0]) + len(labels[1]),
                                      sum(len(lab) for lab in labels))


def test_packed_attention_does_not_cross_examples(tok_model, tmp_path):
    """Changing one example's tokens leaves every other example's loss in the packed row unchanged."""
    tok, model = tok_model
    mix = tokenize_mixture(tok, EXAMPLES[:3], 256, cache_dir=tmp_path)
    feats = [{"input_ids": i, "labels": lab} for i, lab in zip(mix.input_ids, mix.labels())]
    changed = [dict(feats[0], input_ids=[(t + 7) % 500 for t in feats[0]["input_ids"]])] + feats[1:]
    model.set_attn_implementation(register_varlen())
    try:
        with torch.no_grad():
            hid = [model.model(**{k: b[k] for k in ("input_ids", "position_ids")}, seq_bounds=b["seq_bounds"],
                               cu_seq_lens_q=b["cu_seq_lens_q"]).last_hidden_state
                   for b in (PaddingFreeCollator()(feats), PaddingFreeCollator()(changed))]
    finally:
        model.set_attn_implementation("sdpa")
    start = len(feats[0]["input_ids"])
    torch.testing.assert_close(hid[0][:, start:], hid[1][:, start:])


@pytest.mark.parametrize("chunk", [7, 1024])
def test_chunked_cross_entropy_equals_plain_loss_and_gradients(chunk):
    torch.manual_seed(0)
    hidden = torch.randn(50, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(300, 16, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 300, (50,))
    got = chunked_cross_entropy(hidden, weight, targets, chunk)
    (2.5 * got).backward()
    gh, gw = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    want = F.cross_entropy(hidden @ weight.T, targets, reduction="sum")
    (2.5 * want).backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(gh, hidden.grad)
    torch.testing.assert_close(gw, weight.grad)


def test_chunked_cross_entropy_softcap_and_frozen_head():
    torch.manual_seed(1)
    hidden = torch.randn(20, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(40, 8, dtype=torch.float64)  # frozen head (LoRA): no weight gradient is formed
    targets = torch.randint(0, 40, (20,))
    got = chunked_cross_entropy(hidden, weight, targets, 6, softcap=3.0)
    got.backward()
    gh = hidden.grad.clone()
    hidden.grad = None
    logits = 3.0 * torch.tanh((hidden @ weight.T) / 3.0)
    want = F.cross_entropy(logits, targets, reduction="sum")
    want.backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(gh, hidden.grad)


def test_tokenisation_is_cached_by_content(tok_model, tmp_path):
    tok, _ = tok_model
    first = tokenize_mixture(tok, EXAMPLES, 64, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    again = tokenize_mixture(tok, EXAMPLES, 64, cache_dir=tmp_path)
    assert again == first and list(tmp_path.glob("*.npz")) == files
    assert all(len(ids) <= 64 for ids in first.input_ids)
    enc = tok.apply_chat_template(EXAMPLES[0].messages, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    assert first.input_ids[0] == list(enc["input_ids"])[:64]
    tokenize_mixture(tok, EXAMPLES[::-1], 64, cache_dir=tmp_path)  # other content: another entry
    assert len(list(tmp_path.glob("*.npz"))) == 2


@pytest.mark.parametrize("method", ["full", "lora"])
def test_final_loss_unchanged_by_packing(tiny_model_cfg, tiny_model_path, tmp_path, method):
    """Same examples per step (the trainer's sampler), so padded and packed training follow the same losses: in
    fp32 (the CPU default) to 1e-5 relative (the mean loss over the run is not rounded; packing, per-example
    attention and the chunked cross-entropy change only the order of float sums)."""
    losses = {}
    for packing in (False, True):
        cfg = TrainingConfig(method=method, max_steps=6, batch_size=8, save_steps=100, logging_steps=1,
                             max_length=256, packing=packing)
        out = tmp_path / f"p{packing}"
        train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, out, show_progress=False)
        state = json.loads((out / "train_summary.json").read_text())
        losses[packing] = (state["first_loss"], state["last_loss"], state["train_loss"])
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_block_diagonal_mask_matches_per_example_attention(dtype):
    """The GPU fallback (one SDPA call, block-diagonal causal mask) equals the CPU path (one float32 call per
    example), and the CPU path returns the input dtype."""
    import types

    from langmix.packing import _block_causal_mask, varlen_attention

    torch.manual_seed(0)
    bounds = (0, 5, 12, 13, 20)
    q, k, v = (torch.randn(1, h, 20, 8).to(dtype) for h in (4, 2, 2))
    module = types.SimpleNamespace(training=False)
    for window in (None, 2, 4):
        loop, _ = varlen_attention(module, q, k, v, None, scaling=0.3, seq_bounds=bounds, sliding_window=window)
        assert loop.dtype == dtype and loop.shape == (1, 20, 4, 8)
        mask = _block_causal_mask(bounds, window, q.device)
        one = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, scale=0.3,
                                             enable_gqa=True).transpose(1, 2)
        torch.testing.assert_close(loop, one.to(dtype))


def test_activation_checkpointing_changes_neither_losses_nor_weights(tiny_model_cfg, tiny_model_path, tmp_path):
    """Recomputing activations (TRL's default) or keeping them (langmix's): the same training, bit for bit up to
    float reassociation; and the deprecated-name warning of transformers 5 is not raised."""
    import warnings

    from safetensors.torch import load_file

    summaries, weights = {}, {}
    for on in (False, True):
        cfg = TrainingConfig(max_steps=4, batch_size=8, save_steps=100, logging_steps=1, max_length=256,
                             activation_checkpointing=on)
        out = tmp_path / f"ac{on}"
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*gradient_checkpointing.*deprecated", category=FutureWarning)
            train(tiny_model_cfg, tiny_model_path, EXAMPLES, cfg, 0, out, show_progress=False)
        summaries[on] = json.loads((out / "train_summary.json").read_text())
        weights[on] = load_file(str(out / "final" / "model.safetensors"))
    assert summaries[True]["last_loss"] == pytest.approx(summaries[False]["last_loss"], rel=1e-5)
    for name, w in weights[False].items():
        torch.testing.assert_close(weights[True][name], w, rtol=1e-5, atol=1e-6)
