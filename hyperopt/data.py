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
* Your own data: ``Split.from_arrays(X, y, val=0.2, test=0.2, seed=0)``
  splits arrays (stratified by class when y holds integer labels), and
  `load_arrays` / `load_split` read them from an ``.npz`` (arrays ``X`` and
  ``y``, or ``x`` and ``y``) or a numeric ``.csv`` (the last column is the
  target unless told otherwise).  Files are read without executing code
  (``np.load(..., allow_pickle=False)``).

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
import os
from importlib import resources
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from ._checks import float_dtype

__all__ = [
    "Dataset", "Split", "Batcher", "digits", "synthetic_classification",
    "synthetic_regression", "text", "load_corpus", "corpus_vocab", "encode",
    "decode", "get_dataset", "DATASETS", "load_arrays", "load_split",
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

    @classmethod
    def from_arrays(cls, X: Any, y: Any, val: float = 0.2, test: float = 0.2, seed: int = 0,
                    stratify: bool | None = None) -> "Split":
        """A fixed (train, val, test) split of your own arrays.

        ``X``: shape (N, ...) of numbers (N examples, e.g. (N, features) or
        (N, C, H, W)); ``y``: N targets, shape (N, ...).  Integer (or bool)
        ``y`` of shape (N,) is taken as class labels 0..C-1: the split is
        stratified by class (``stratify=None``, the default, decides so; True
        or False forces it) and ``n_classes`` is ``max(y) + 1``.  Any other
        ``y`` (a float regression target) gets a plain shuffled split and
        ``n_classes=None``.  ``val`` and ``test`` are the fractions of the rows
        held out, drawn with ``seed`` as `digits` does; arrays keep their
        dtypes (bool labels become int64).  Bad shapes, fractions or values
        raise ValueError saying what was found.
        """
        X, y = _check_arrays(X, y)
        classes = np.issubdtype(y.dtype, np.integer) and y.ndim == 1
        if stratify is None:
            stratify = classes
        elif stratify and not classes:
            raise ValueError(f"stratify=True needs integer class labels of shape (N,), got y of "
                             f"dtype {y.dtype} and shape {y.shape}")
        if classes and y.size and y.min() < 0:
            raise ValueError(f"class labels must be integers 0..C-1, got a minimum of {y.min()}")
        for name, f in (("val", val), ("test", test)):
            if isinstance(f, bool) or not isinstance(f, (int, float, np.integer, np.floating)) \
                    or not 0.0 <= f < 1.0:
                raise ValueError(f"{name} must be a fraction in [0, 1), got {f!r}")
        if val + test >= 1.0:
            raise ValueError(f"val + test must be < 1 to leave a training set, got "
                             f"{val} + {test}")
        for name, f in (("val", val), ("test", test)):
            if f > 0 and round(f * len(X)) < 1:
                raise ValueError(f"{name}={f} of {len(X)} examples is less than one example; "
                                 "use a larger fraction or more data")
        seed = _seed(seed)
        meta = {"n_classes": int(y.max()) + 1 if classes and y.size else None}
        try:
            return _split_rows(X, y, seed=seed, val_fraction=float(val),
                               test_fraction=float(test), stratify=bool(stratify), **meta)
        except ValueError as e:
            if not stratify or "least populated class" not in str(e) and "should be greater or "\
                    "equal to the number of classes" not in str(e):
                raise
            counts = np.bincount(y)
            rare = [c for c in range(len(counts)) if 0 < counts[c] < 3]
            raise ValueError(f"cannot stratify the split by class: {len(X)} examples of "
                             f"{int(np.count_nonzero(counts))} classes"
                             + (f", and class(es) {rare[:5]} have fewer than 3 examples" if rare
                                else "")
                             + f" (val={val}, test={test}); use more data, larger fractions, "
                             "or stratify=False") from None


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


def _check_arrays(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """X (N, ...) and y (N, ...) as numeric, finite arrays, or ValueError saying what is wrong."""
    arrays = []
    for name, a in (("X", X), ("y", y)):
        try:
            a = np.asarray(a)
        except Exception as e:  # ragged nested lists and the like
            raise ValueError(f"{name} is not an array: {e}") from None
        if a.dtype == bool:
            a = a.astype(np.int64)
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise ValueError(f"{name} must hold numbers, got dtype {a.dtype}")
        if a.ndim == 0:
            raise ValueError(f"{name} must have a first axis of examples, got a scalar")
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            bad = np.flatnonzero(~np.all(np.isfinite(a.reshape(len(a), -1)), axis=1))
            raise ValueError(f"{name} has non-finite values (NaN or inf) in {len(bad)} row(s), "
                             f"the first at row {bad[0]}")
        arrays.append(a)
    X, y = arrays
    if X.ndim < 2:
        raise ValueError(f"X must have shape (N, features...), got shape {X.shape}; for one "
                         "feature use X.reshape(-1, 1)")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows (examples), got "
                         f"X {X.shape} and y {y.shape}")
    if len(X) < 3:
        raise ValueError(f"need at least 3 examples to split into train, val and test, got "
                         f"{len(X)}")
    return X, y


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


# ---------------------------------------------------------------- your own files

def load_arrays(path: str, target: str | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` from an ``.npz`` or a numeric ``.csv`` file.

    ``.npz``: the arrays named ``X`` and ``y`` (or ``x`` and ``y``), loaded
    with ``allow_pickle=False`` (object arrays are refused).  ``.csv``: numbers
    only, separated by commas (or semicolons or tabs); blank lines and lines
    starting with ``#`` are skipped; a first row that is not all numbers is a
    header.  ``target`` (a column name from the header, or an index, negative
    from the end) is y, the last column by default; the others are X (float64).
    A target column of whole numbers is read as int64 class labels, any other
    as float64.  Anything else raises ValueError naming the file and what was
    found.
    """
    path = str(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".csv"):
        raise ValueError(f"{path}: expected a .npz or .csv file, got {ext or 'no extension'!r}")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    if ext == ".npz":
        if target is not None:
            raise ValueError(f"{path}: a target column applies to .csv files; an .npz names its "
                             "arrays X and y")
        return _load_npz(path)
    return _load_csv(path, target)


def _load_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    import zipfile
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise ValueError(f"{path}: not an .npz file (an .npz is a zip archive, as np.savez "
                         f"writes; this file starts with {magic!r})")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            xname = "X" if "X" in names else "x" if "x" in names else None
            if xname is None or "y" not in names:
                found = ", ".join(f"{n} {z[n].shape} {z[n].dtype}" for n in names) or "no arrays"
                raise ValueError(f"expected arrays named X and y (or x and y); found {found}")
            return z[xname], z["y"]
    except ValueError as e:
        if "Object arrays" in str(e):
            e = "an array holds Python objects (dtype object); only numeric arrays are read"
        raise ValueError(f"{path}: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def _load_csv(path: str, target: str | int | None) -> tuple[np.ndarray, np.ndarray]:
    import csv
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = [(i + 1, line) for i, line in enumerate(f)
                     if line.strip() and not line.lstrip().startswith("#")]
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (it is not UTF-8)") from None
    if not lines:
        raise ValueError(f"{path}: no rows")
    first = lines[0][1]
    delim = next((d for d in (",", "\t", ";") if d in first), ",")
    rows = list(csv.reader((line for _, line in lines), delimiter=delim))

    def number(cell: str) -> float | None:
        try:
            return float(cell)
        except ValueError:
            return None

    header = None
    if any(number(c) is None for c in rows[0]):
        header, rows, lines = [c.strip() for c in rows[0]], rows[1:], lines[1:]
    if not rows:
        raise ValueError(f"{path}: a header and no data rows")
    width = len(header) if header is not None else len(rows[0])
    if width < 2:
        raise ValueError(f"{path}: one column; need feature column(s) and a target column "
                         f"(separated by commas, semicolons or tabs)")
    values = np.empty((len(rows), width))
    for i, ((lineno, _), row) in enumerate(zip(lines, rows)):
        if len(row) != width:
            raise ValueError(f"{path} line {lineno}: {len(row)} columns, expected {width}")
        for j, cell in enumerate(row):
            v = number(cell)
            if v is None:
                raise ValueError(f"{path} line {lineno}, column {j + 1}: {cell.strip()!r} is not "
                                 "a number (only numeric CSV files are read; a header may be the "
                                 "first row only)")
            values[i, j] = v
    if isinstance(target, str) and not target.lstrip("-").isdigit():
        if header is None:
            raise ValueError(f"{path}: has no header row, so target {target!r} cannot be a "
                             "column name; give its index (0-based, negative from the end)")
        if target not in header:
            raise ValueError(f"{path}: no column named {target!r}; columns: {header}")
        col = header.index(target)
    else:
        col = -1 if target is None else int(target)
        if not -width <= col < width:
            raise ValueError(f"{path}: target column {col} is out of range for {width} columns")
        col %= width
    y = values[:, col]
    X = np.delete(values, col, axis=1)
    if np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    return X, y


def load_split(path: str, val: float = 0.2, test: float = 0.2, seed: int = 0,
               target: str | int | None = None) -> Split:
    """`load_arrays` then `Split.from_arrays`; errors name the file."""
    X, y = load_arrays(path, target)
    try:
        return Split.from_arrays(X, y, val=val, test=test, seed=seed)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


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
