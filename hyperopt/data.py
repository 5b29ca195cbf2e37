"""Datasets for hyperparameter experiments: fixed splits, deterministic batches.

Everything here is built from data that ships with the code (scikit-learn's
embedded digits, scikit-learn's synthetic generators, a text file inside this
package), so nothing is downloaded and every machine gets the same arrays:

* `digits`, `synthetic_classification`, `synthetic_regression` and `text`
  return a `Split` of three `Dataset` ``(x, y)`` pairs (train, val, test).
  ``train, val, test = split`` works; metadata rides along as attributes
  (``n_classes``, ``vocab``, ``indices``, ``spans``).
* `Batcher` picks minibatch indices as a pure function of ``(seed, step)``:
  epoch ``e`` is a permutation drawn from ``np.random.default_rng([seed, e])``,
  so a training run restarted at any step sees exactly the batches it would
  have seen, and a hypergradient replaying a run replays the same data.
* `get_dataset(name, **kwargs)` looks a loader up by name.

Corpus (hyperopt/corpus/coriolanus.txt, 31,994 ASCII characters): William
Shakespeare, *The Tragedy of Coriolanus* (written c. 1608, printed in the First
Folio, 1623), Act I to the middle of scene 9: speaker names and spoken lines,
stage directions removed.  The text is the opening 32,000 characters of the
"tiny shakespeare" compilation (data/tinyshakespeare/input.txt in Andrej
Karpathy's char-rnn repository), cut at the last complete line.  The play is
in the public domain.
"""
from __future__ import annotations

import functools
import math
from importlib import resources
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from ._checks import float_dtype

__all__ = [
    "Dataset", "Split", "Batcher", "digits", "synthetic_classification",
    "synthetic_regression", "text", "load_corpus", "corpus_vocab", "encode",
    "decode", "get_dataset", "DATASETS",
]

DEFAULT_CORPUS = "coriolanus"


class Dataset(NamedTuple):
    """Inputs ``x`` (first axis: examples) and targets ``y``."""
    x: np.ndarray
    y: np.ndarray


class _SplitFields(NamedTuple):
    train: Dataset
    val: Dataset
    test: Dataset


class Split(_SplitFields):
    """``(train, val, test)`` Datasets; metadata as attributes, not tuple fields.

    Attributes (None where they do not apply):
      n_classes: number of classes of a classification task.
      vocab: the sorted characters of a text corpus; id ``i`` is ``vocab[i]``.
      indices: for tabular data, the row indices of (train, val, test) in the
        source data (scikit-learn's order for digits, the generator's order for
        synthetic data).
      spans: for text, the character ranges ``(start, stop)`` of the corpus
        that (train, val, test) were cut from; they are contiguous and disjoint.
    """
    n_classes: int | None = None
    vocab: str | None = None
    indices: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    spans: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None = None

    def __new__(cls, train: Dataset, val: Dataset, test: Dataset, **meta: Any) -> "Split":
        self = super().__new__(cls, train, val, test)
        for key, value in meta.items():
            if not hasattr(cls, key):
                raise TypeError(f"Split got an unknown metadata field {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        def shapes(d: Dataset) -> str:
            return f"(x={d.x.shape} {d.x.dtype}, y={d.y.shape} {d.y.dtype})"
        meta = [f"{k}={v!r}" for k, v in vars(self).items() if k in ("n_classes", "spans")]
        meta += [f"vocab=<{len(self.vocab)} chars>"] if self.vocab is not None else []
        return (f"Split(train={shapes(self.train)}, val={shapes(self.val)}, "
                f"test={shapes(self.test)}{''.join(', ' + m for m in meta)})")

    def _replace(self, **changes: Any) -> "Split":
        fields = {f: changes.pop(f, getattr(self, f)) for f in self._fields}
        return type(self)(**fields, **{**vars(self), **changes})


# ---------------------------------------------------------------- validation

def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"seed must be a non-negative int, got {value!r}")
    return int(value)


def _fractions(val_fraction: float, test_fraction: float) -> tuple[float, float]:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not (isinstance(f, (int, float, np.floating)) and 0.0 <= f < 1.0):
            raise ValueError(f"{name} must be in [0, 1), got {f!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1 to leave a training set, "
                         f"got {val_fraction} + {test_fraction}")
    return float(val_fraction), float(test_fraction)


# ---------------------------------------------------------------- tabular data

def _split_rows(x: np.ndarray, y: np.ndarray, *, seed: int, val_fraction: float,
                test_fraction: float, stratify: bool, **meta: Any) -> Split:
    """A fixed (train, val, test) split of rows with scikit-learn's train_test_split.

    The test rows are drawn first, then the validation rows from what is left,
    both with ``random_state=seed`` (scikit-learn's legacy RandomState, whose
    stream is the same on every platform).
    """
    from sklearn.model_selection import train_test_split  # scikit-learn imports slowly

    val_fraction, test_fraction = _fractions(val_fraction, test_fraction)
    rest = np.arange(len(x))

    def take(pool: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        if fraction == 0.0:
            return pool, pool[:0]
        keep, out = train_test_split(pool, test_size=fraction, random_state=seed,
                                     shuffle=True, stratify=y[pool] if stratify else None)
        return keep, out

    rest, test_idx = take(rest, test_fraction)
    train_idx, val_idx = take(rest, val_fraction / (1.0 - test_fraction))
    parts = tuple(np.sort(i) for i in (train_idx, val_idx, test_idx))
    if len(parts[0]) == 0:
        raise ValueError("the split leaves no training examples; lower val_fraction/test_fraction")
    return Split(*(Dataset(x[i], y[i]) for i in parts), indices=parts, **meta)


def digits(seed: int = 0, images: bool = False, dtype: Any = np.float64,
           val_fraction: float = 0.2, test_fraction: float = 0.2) -> Split:
    """scikit-learn's 1,797 8x8 handwritten digits, pixels scaled to [0, 1].

    x has shape (N, 64), or (N, 1, 8, 8) with ``images=True`` (a one-channel
    image for a CNN); y holds int64 labels 0-9.  The split is stratified by
    label and fixed by ``seed``.
    """
    from sklearn.datasets import load_digits

    seed = _seed(seed)
    dtype = float_dtype(dtype, "digits: dtype")
    d = load_digits()
    x = (np.asarray(d.data, dtype=np.float64) / 16.0).astype(dtype)
    if images:
        x = x.reshape(-1, 1, 8, 8)
    y = np.asarray(d.target, dtype=np.int64)
    return _split_rows(x, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                       stratify=True, n_classes=10)


def synthetic_classification(n: int = 1000, n_features: int = 20, n_classes: int = 3,
                             seed: int = 0, *, n_informative: int | None = None,
                             class_sep: float = 1.0, dtype: Any = np.float64,
                             val_fraction: float = 0.2, test_fraction: float = 0.2) -> Split:
    """A Gaussian-cluster classification task from `sklearn.datasets.make_classification`.

    ``n_informative`` defaults to half the features (at least enough for two
    clusters per class); two more features are redundant combinations of
    those where there is room, the rest are noise.  y holds int64 labels in
    ``range(n_classes)``; the split is stratified.
    """
    n, n_features, n_classes = (_positive_int(k, v) for k, v in
                                (("n", n), ("n_features", n_features), ("n_classes", n_classes)))
    seed = _seed(seed)
    dtype = float_dtype(dtype, "synthetic_classification: dtype")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    if n_informative is None:
        n_informative = max(n_features // 2, math.ceil(math.log2(2 * n_classes)))
    n_informative = _positive_int("n_informative", n_informative)
    if n_informative > n_features:
        raise ValueError(f"n_informative ({n_informative}) exceeds n_features ({n_features})")
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=n, n_features=n_features, n_informative=n_informative,
                               n_redundant=min(2, n_features - n_informative), n_repeated=0,
                               n_classes=n_classes, class_sep=class_sep, random_state=seed)
    return _split_rows(x.astype(dtype), y.astype(np.int64), seed=seed,
                       val_fraction=val_fraction, test_fraction=test_fraction,
                       stratify=True, n_classes=n_classes)


def synthetic_regression(n: int = 1000, n_features: int = 20, noise: float = 0.1,
                         seed: int = 0, *, n_informative: int = 10, dtype: Any = np.float64,
                         val_fraction: float = 0.2, test_fraction: float = 0.2) -> Split:
    """A linear regression task from `sklearn.datasets.make_regression`.

    y (float, shape (N,)) is a random linear function of ``n_informative`` of
    the standard-normal features plus Gaussian noise of std ``noise``.  Note
    that scikit-learn draws the coefficients from U(0, 100), so y is on that
    scale; standardize it if a model expects unit-scale targets.
    """
    n, n_features = _positive_int("n", n), _positive_int("n_features", n_features)
    seed = _seed(seed)
    dtype = float_dtype(dtype, "synthetic_regression: dtype")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a non-negative finite number, got {noise!r}")
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=n, n_features=n_features,
                           n_informative=min(_positive_int("n_informative", n_informative),
                                             n_features),
                           noise=noise, random_state=seed)
    return _split_rows(x.astype(dtype), y.astype(dtype), seed=seed,
                       val_fraction=val_fraction, test_fraction=test_fraction, stratify=False)


# ---------------------------------------------------------------- text

@functools.lru_cache(maxsize=None)
def load_corpus(name: str = DEFAULT_CORPUS) -> str:
    """The text of ``hyperopt/corpus/<name>.txt``, read as package data."""
    path = resources.files("hyperopt") / "corpus" / f"{name}.txt"
    if not path.is_file():
        known = sorted(p.name[:-4] for p in (resources.files("hyperopt") / "corpus").iterdir()
                       if p.name.endswith(".txt"))
        raise ValueError(f"unknown corpus {name!r}; shipped corpora: {known}")
    return path.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def corpus_vocab(name: str = DEFAULT_CORPUS) -> str:
    """The sorted distinct characters of the whole corpus (ids do not depend on max_chars)."""
    return "".join(sorted(set(load_corpus(name))))


def encode(s: str, vocab: str | None = None) -> np.ndarray:
    """Character ids (int64) of ``s`` in ``vocab`` (default: the shipped corpus's)."""
    vocab = corpus_vocab() if vocab is None else vocab
    table = {c: i for i, c in enumerate(vocab)}
    try:
        return np.fromiter((table[c] for c in s), dtype=np.int64, count=len(s))
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None


def decode(ids: Any, vocab: str | None = None) -> str:
    """The string whose character ids are ``ids`` (any int array-like, flattened)."""
    vocab = corpus_vocab() if vocab is None else vocab
    ids = np.asarray(ids).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= len(vocab)):
        raise ValueError(f"ids must lie in [0, {len(vocab)}), got range "
                         f"[{ids.min()}, {ids.max()}]")
    return "".join(vocab[i] for i in ids.tolist())


def _windows(ids: np.ndarray, seq_len: int, offset: int) -> Dataset:
    """Non-overlapping windows: x = ids[o + k L : o + (k+1) L], y the same shifted by one."""
    n = (len(ids) - 1 - offset) // seq_len
    x = ids[offset:offset + n * seq_len].reshape(n, seq_len)
    y = ids[offset + 1:offset + 1 + n * seq_len].reshape(n, seq_len)
    return Dataset(x.copy(), y.copy())


def text(seq_len: int = 32, seed: int = 0, val_fraction: float = 0.1,
         test_fraction: float = 0.1, max_chars: int | None = None,
         corpus: str = DEFAULT_CORPUS) -> Split:
    """Character-level language modelling on the shipped corpus.

    The first ``max_chars`` characters (all by default) are cut into three
    contiguous, disjoint spans: train, then val, then test.  Each span becomes
    non-overlapping windows; x is (N, seq_len) int64 ids and y the next
    character at each position, so no target crosses from one span into the
    next.  ``seed`` only picks where the training windows start (an offset in
    ``[0, seq_len)``); val and test windows start at their span's first
    character so every seed is scored on the same sequences.  ``vocab`` is the
    whole corpus's sorted character set; `encode` and `decode` convert.
    """
    seq_len = _positive_int("seq_len", seq_len)
    seed = _seed(seed)
    val_fraction, test_fraction = _fractions(val_fraction, test_fraction)
    full = load_corpus(corpus)
    vocab = corpus_vocab(corpus)
    if max_chars is not None:
        full = full[:_positive_int("max_chars", max_chars)]
    ids = encode(full, vocab)
    n = len(ids)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    bounds = (0, n - n_val - n_test, n - n_test, n)
    spans = tuple((bounds[i], bounds[i + 1]) for i in range(3))
    offset = int(np.random.default_rng(seed).integers(seq_len))
    parts = []
    for (start, stop), name, off in zip(spans, ("train", "val", "test"), (offset, 0, 0)):
        if name != "train" and start == stop:  # a zero fraction: an empty set
            parts.append(Dataset(np.zeros((0, seq_len), np.int64), np.zeros((0, seq_len), np.int64)))
            continue
        if stop - start - off < seq_len + 1:
            raise ValueError(f"the {name} span has {stop - start} characters, too few for a "
                             f"window of seq_len={seq_len} (+1 for the target) starting at "
                             f"offset {off}; use a smaller seq_len or more characters")
        parts.append(_windows(ids[start:stop], seq_len, off))
    return Split(*parts, vocab=vocab, spans=spans)


# ---------------------------------------------------------------- batching

class Batcher:
    """Minibatch indices as a pure function of ``(seed, step)``.

    ``indices(step)`` is slice ``step % steps_per_epoch`` of epoch
    ``step // steps_per_epoch``'s order, which is
    ``np.random.default_rng([seed, epoch]).permutation(n)`` (or ``arange(n)``
    with ``shuffle=False``).  No state advances between calls, so any step can
    be asked for in any order, and a resumed run matches an uninterrupted one.
    With ``drop_last=True`` the ``n % batch_size`` examples left at the end of
    an epoch's order are skipped that epoch (each epoch skips different ones);
    with ``drop_last=False`` they form a shorter last batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True):
        self.n = _positive_int("n", n)
        self.batch_size = _positive_int("batch_size", batch_size)
        if self.batch_size > self.n:
            raise ValueError(f"batch_size ({self.batch_size}) is larger than the number of "
                             f"examples n ({self.n})")
        self.seed = _seed(seed)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.steps_per_epoch = (self.n // self.batch_size if self.drop_last
                                else -(-self.n // self.batch_size))

    def __repr__(self) -> str:
        return (f"Batcher(n={self.n}, batch_size={self.batch_size}, seed={self.seed}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The order of all ``n`` indices in ``epoch`` (a fresh array)."""
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return np.arange(self.n)

    def indices(self, step: int) -> np.ndarray:
        """The example indices (int64) of minibatch ``step`` (0-based)."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"step must be an int, got {type(step).__name__}")
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        epoch, k = divmod(int(step), self.steps_per_epoch)
        cached = getattr(self, "_cached", None)   # consecutive steps share an epoch's order
        if cached is None or cached[0] != epoch:
            cached = self._cached = (epoch, self.epoch_order(epoch))
        return cached[1][k * self.batch_size:(k + 1) * self.batch_size].astype(np.int64)

    def batch(self, dataset: Dataset, step: int) -> Dataset:
        """``Dataset(x[idx], y[idx])`` for ``idx = indices(step)``."""
        if len(dataset.x) != self.n or len(dataset.y) != self.n:
            raise ValueError(f"this Batcher is for n={self.n} examples, the dataset has "
                             f"x: {len(dataset.x)}, y: {len(dataset.y)}")
        idx = self.indices(step)
        return Dataset(dataset.x[idx], dataset.y[idx])


# ---------------------------------------------------------------- registry

DATASETS: Mapping[str, Callable[..., Split]] = MappingProxyType({
    "digits": digits,
    "digits_images": functools.partial(digits, images=True),
    "synthetic_classification": synthetic_classification,
    "synthetic_regression": synthetic_regression,
    "text": text,
})


def get_dataset(name: str, **kwargs: Any) -> Split:
    """``DATASETS[name](**kwargs)``; an unknown name raises ValueError listing the known ones."""
    try:
        loader = DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r}; known datasets: "
                         f"{', '.join(sorted(DATASETS))}") from None
    return loader(**kwargs)
