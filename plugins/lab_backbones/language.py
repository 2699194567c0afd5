"""Character-level language models on text datasets: a causal transformer (a small GPT) or an RNN/LSTM/GRU.

Training reads random windows of ``context + 1`` characters and predicts every next character; the step count is
characters predicted. Scores are bits per character (bpc), lower is better, next to unigram and bigram baselines
fitted on the same training split.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lab.api import BuildContext, StepCallback, load_settings, load_weights, save_weights

WEIGHTS_FILE = "model.safetensors"
META_FILE = "language_model.json"
EVAL_WINDOWS = 64  # fixed windows of each split, so evaluations are comparable


class CausalTransformer(nn.Module):
    def __init__(self, vocabulary: int, context: int, config: object) -> None:
        super().__init__()
        d_model = config.d_model  # type: ignore[attr-defined]
        self.embed = nn.Embedding(vocabulary, d_model)
        self.position = nn.Parameter(torch.zeros(1, context, d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, config.heads, config.ff, config.dropout,  # type: ignore[attr-defined]
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)  # type: ignore[attr-defined]
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocabulary)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        steps = tokens.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(steps, device=tokens.device)
        hidden = self.blocks(self.embed(tokens) + self.position[:, :steps], mask=mask, is_causal=True)
        return self.head(self.norm(hidden))


class CharRNN(nn.Module):
    CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

    def __init__(self, vocabulary: int, cell: str, config: object) -> None:
        super().__init__()
        hidden = config.hidden  # type: ignore[attr-defined]
        self.embed = nn.Embedding(vocabulary, hidden)
        self.rnn = self.CELLS[cell](hidden, hidden, num_layers=config.layers, batch_first=True,  # type: ignore[attr-defined]
                                    dropout=config.dropout if config.layers > 1 else 0.0)  # type: ignore[attr-defined]
        self.head = nn.Linear(hidden, vocabulary)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(self.embed(tokens))
        return self.head(outputs)


class LanguageModel:
    target_score = None

    def __init__(self, context: BuildContext) -> None:
        assert context.load_dataset is not None
        self.config = context.config
        self.plugin = context.runner.plugin
        self.device = torch.device(context.device)
        data = context.load_dataset()
        self.vocabulary: list[str] = list(data.vocabulary or [])
        self.index = {symbol: i for i, symbol in enumerate(self.vocabulary)}
        self.splits = {"train": torch.as_tensor(data.x_train), "val": torch.as_tensor(data.x_val),
                       "test": torch.as_tensor(data.x_test)}
        self.context = self.config.context
        if self.plugin == "transformer":
            self.net = CausalTransformer(len(self.vocabulary), self.context, self.config)
        else:
            self.net = CharRNN(len(self.vocabulary), self.plugin, self.config)
        self.net.to(self.device)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.config.lr,
                                           weight_decay=self.config.weight_decay)
        self.generator = torch.Generator().manual_seed(context.runner.seed)
        self.examples = 0
        self.log_metrics = context.log_metrics
        self.log_metrics({"model/parameters": sum(p.numel() for p in self.net.parameters())}, 0)

    def _windows(self, split: str, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        data = self.splits[split]
        starts = torch.randint(0, len(data) - self.context - 1, (count,), generator=generator)
        chunks = torch.stack([data[s:s + self.context + 1] for s in starts.tolist()]).to(self.device)
        return chunks[:, :-1], chunks[:, 1:]

    def train(self, budget: int, on_step: StepCallback) -> None:
        self.net.train()
        per_step = self.config.batch_size * self.context
        losses: list[float] = []
        while self.examples < budget:
            if self.config.lr_schedule == "cosine":
                for group in self.optimizer.param_groups:
                    group["lr"] = self.config.lr * 0.5 * (1 + math.cos(math.pi * min(self.examples / budget, 1.0)))
            x, y = self._windows("train", self.config.batch_size, self.generator)
            loss = nn.functional.cross_entropy(self.net(x).flatten(0, 1), y.flatten())
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
            self.optimizer.step()
            losses.append(float(loss.detach()))
            self.examples += per_step
            if len(losses) == 50 or self.examples >= budget:
                self.log_metrics({"train/bpc": float(np.mean(losses)) / math.log(2)}, self.examples)
                losses = []
            if not on_step(self.examples):
                return

    @torch.no_grad()
    def bits_per_character(self, split: str) -> float:
        self.net.eval()
        x, y = self._windows(split, EVAL_WINDOWS, torch.Generator().manual_seed(1))
        loss = nn.functional.cross_entropy(self.net(x).flatten(0, 1), y.flatten())
        self.net.train()
        return float(loss) / math.log(2)

    def evaluate(self, episodes: int) -> dict[str, float]:
        bpc = self.bits_per_character("val")
        return {"score": -bpc, "bpc": bpc}

    def test(self) -> dict[str, float]:
        unigram, bigram = baselines(self.splits["train"].numpy(), self.splits["test"].numpy(), len(self.vocabulary))
        return {"bpc": self.bits_per_character("test"), "unigram_bpc": unigram, "bigram_bpc": bigram}

    @torch.no_grad()
    def sample(self, prompt: str, n: int, temperature: float = 1.0, seed: int = 0) -> str:
        """Continue ``prompt`` by ``n`` characters, sampling at ``temperature`` (0 = always the likeliest)."""
        unknown = sorted({c for c in prompt if c not in self.index})
        if unknown:
            raise ValueError(f"prompt has characters outside the vocabulary: {''.join(unknown)!r}")
        generator = torch.Generator(device=self.device).manual_seed(seed)
        tokens = [self.index[c] for c in prompt] or [self.index.get("\n", 0)]
        self.net.eval()
        for _ in range(n):
            window = torch.tensor([tokens[-self.context:]], device=self.device)
            logits = self.net(window)[0, -1]
            if temperature <= 0:
                tokens.append(int(logits.argmax()))
            else:
                probabilities = torch.softmax(logits / temperature, dim=-1)
                tokens.append(int(torch.multinomial(probabilities, 1, generator=generator)))
        self.net.train()
        start = len(prompt) if prompt else 1  # without a prompt, generation starts after a newline
        return "".join(self.vocabulary[t] for t in tokens[start:])

    # ------------------------------------------------------------------------------------ MLflow pyfunc

    def pyfunc_input(self) -> dict[str, list[Any]]:
        """A table of prompts, continuation lengths and seeds."""
        prompt = "".join(self.vocabulary[int(t)] for t in self.splits["val"][:8])
        return {"prompt": [prompt], "n": [40], "seed": [0]}

    def pyfunc_predict(self, inputs: Any) -> list[str]:
        """Each row's prompt continued by ``n`` characters sampled at temperature 0.8 with its ``seed``."""
        rows = zip(list(inputs["prompt"]), list(inputs["n"]), list(inputs["seed"]), strict=True)
        return [self.sample(str(prompt), int(n), temperature=0.8, seed=int(seed)) for prompt, n, seed in rows]

    def save(self, directory: Path) -> None:
        meta = {"plugin": self.plugin, "context": self.context, "vocabulary": self.vocabulary,
                "examples": self.examples}
        save_weights(directory, self.net, weights_file=WEIGHTS_FILE, settings=meta, settings_file=META_FILE)

    def load(self, directory: Path) -> None:
        meta = load_settings(directory, META_FILE)
        if meta["vocabulary"] != self.vocabulary:  # checked first: the message says why the shapes would differ
            raise ValueError(f"weights in {directory} were trained on another vocabulary (another Python's stdlib?)")
        load_weights(directory, self.net, weights_file=WEIGHTS_FILE, device=self.device)

    def artifacts(self, directory: Path) -> list[Path]:
        path = directory / "sample.txt"
        path.write_text(self.sample("def ", 400, temperature=0.8))
        return [path]


def baselines(train: np.ndarray, test: np.ndarray, vocabulary: int) -> tuple[float, float]:
    """Bits per character of add-one-smoothed unigram and bigram models fitted on ``train``."""
    unigram = np.bincount(train, minlength=vocabulary) + 1.0
    unigram_bpc = float(-np.log2(unigram[test] / unigram.sum()).mean())
    bigram = np.ones((vocabulary, vocabulary))
    np.add.at(bigram, (train[:-1], train[1:]), 1.0)
    bigram /= bigram.sum(axis=1, keepdims=True)
    bigram_bpc = float(-np.log2(bigram[test[:-1], test[1:]]).mean())
    return unigram_bpc, bigram_bpc
