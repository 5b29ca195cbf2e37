"""hyperopt.data: fixed splits, the shipped corpus, deterministic batches."""
import configparser
import fnmatch
import pickle
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from hyperopt import data
from hyperopt.data import Batcher, Dataset, Split

ROOT = Path(__file__).resolve().parents[1]


def assert_same_split(a: Split, b: Split):
    for da, db in zip(a, b):
        np.testing.assert_array_equal(da.x, db.x)
        np.testing.assert_array_equal(da.y, db.y)
        assert da.x.dtype == db.x.dtype and da.y.dtype == db.y.dtype


def differs(a: Split, b: Split) -> bool:
    return any(da.x.shape != db.x.shape or not np.array_equal(da.x, db.x) for da, db in zip(a, b))


@pytest.fixture(scope="module")
def raw_digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.data / 16.0, d.target


@pytest.fixture(scope="module")
def digits0():
    return data.digits(seed=0)


# ------------------------------------------------------------------ digits

def test_digits_shapes_dtypes_ranges(digits0):
    train, val, test = digits0  # a Split unpacks into exactly three Datasets
    assert isinstance(train, Dataset) and digits0.n_classes == 10
    assert sum(len(d.x) for d in digits0) == 1797
    for d in digits0:
        assert d.x.ndim == 2 and d.x.shape[1] == 64 and d.x.dtype == np.float64
        assert d.y.shape == (len(d.x),) and d.y.dtype == np.int64
        assert d.x.min() >= 0.0 and d.x.max() <= 1.0
        assert set(np.unique(d.y)) == set(range(10))
    assert train.x.max() == 1.0  # scaled by 16, not left in [0, 16] nor min-max per image
    assert len(val.x) == pytest.approx(0.2 * 1797, abs=2)
    assert len(test.x) == pytest.approx(0.2 * 1797, abs=2)


def test_digits_rows_come_from_sklearn_without_overlap(digits0, raw_digits):
    x_all, y_all = raw_digits
    idx = digits0.indices
    joined = np.concatenate(idx)
    assert len(np.unique(joined)) == len(joined) == len(x_all)  # disjoint, and every row used
    for d, i in zip(digits0, idx):
        np.testing.assert_array_equal(d.x, x_all[i])
        np.testing.assert_array_equal(d.y, y_all[i])
    # also by content: no image of val/test is the same row as a training row
    train_rows = {r.tobytes() + bytes([y]) for r, y in zip(digits0.train.x, digits0.train.y)}
    dup_in_sklearn = len(x_all) - len({r.tobytes() + bytes([y]) for r, y in zip(x_all, y_all)})
    leaked = sum(r.tobytes() + bytes([y]) in train_rows
                 for d in digits0[1:] for r, y in zip(d.x, d.y))
    assert leaked <= dup_in_sklearn


def test_digits_stratified(digits0):
    overall = np.bincount(np.concatenate([d.y for d in digits0]), minlength=10) / 1797
    for d in digits0:
        frac = np.bincount(d.y, minlength=10) / len(d.y)
        assert np.abs(frac - overall).max() < 0.01


def test_digits_deterministic_and_seeded(digits0):
    assert_same_split(data.digits(seed=0), digits0)
    other = data.digits(seed=1)
    assert differs(other, digits0)
    assert not np.array_equal(np.sort(other.indices[1]), np.sort(digits0.indices[1]))


def test_digits_images_and_dtype(digits0):
    img = data.digits(seed=0, images=True, dtype=np.float32)
    for d, flat in zip(img, digits0):
        assert d.x.shape == (len(flat.x), 1, 8, 8) and d.x.dtype == np.float32
        np.testing.assert_array_equal(d.x.reshape(len(d.x), 64), flat.x.astype(np.float32))
        np.testing.assert_array_equal(d.y, flat.y)


def test_digits_fractions():
    s = data.digits(val_fraction=0.0, test_fraction=0.5)
    assert len(s.val.x) == 0 and len(s.test.x) == pytest.approx(1797 / 2, abs=1)
    for bad in [dict(val_fraction=0.5, test_fraction=0.5), dict(val_fraction=-0.1),
                dict(test_fraction=1.0)]:
        with pytest.raises(ValueError, match="fraction"):
            data.digits(**bad)
    with pytest.raises(ValueError, match="seed"):
        data.digits(seed=-1)


# ------------------------------------------------------------------ synthetic

def test_synthetic_classification():
    s = data.synthetic_classification(n=600, n_features=7, n_classes=4, seed=3)
    assert s.n_classes == 4 and sum(len(d.x) for d in s) == 600
    overall = np.bincount(np.concatenate([d.y for d in s]), minlength=4) / 600
    for d in s:
        assert d.x.shape[1] == 7 and d.x.dtype == np.float64 and d.y.dtype == np.int64
        assert np.abs(np.bincount(d.y, minlength=4) / len(d.y) - overall).max() < 0.02
    joined = np.concatenate(s.indices)
    assert len(np.unique(joined)) == 600
    assert_same_split(s, data.synthetic_classification(n=600, n_features=7, n_classes=4, seed=3))
    assert differs(s, data.synthetic_classification(n=600, n_features=7, n_classes=4, seed=4))
    # the classes are learnable: a nearest-class-mean rule beats chance clearly
    means = np.stack([s.train.x[s.train.y == k].mean(0) for k in range(4)])
    pred = np.argmin(((s.test.x[:, None, :] - means) ** 2).sum(-1), axis=1)
    assert (pred == s.test.y).mean() > 0.4
    with pytest.raises(ValueError):
        data.synthetic_classification(n_features=5, n_informative=6)
    with pytest.raises(ValueError):
        data.synthetic_classification(n=0)


@pytest.mark.parametrize("noise", [0.0, 3.0])
def test_synthetic_regression_is_linear_plus_noise(noise):
    s = data.synthetic_regression(n=800, n_features=5, noise=noise, seed=2)
    assert s.n_classes is None
    for d in s:
        assert d.x.shape[1] == 5 and d.y.shape == (len(d.x),) and d.y.dtype == np.float64
    a = np.c_[s.train.x, np.ones(len(s.train.x))]
    coef = np.linalg.lstsq(a, s.train.y, rcond=None)[0]
    resid = np.c_[s.test.x, np.ones(len(s.test.x))] @ coef - s.test.y
    assert resid.std() == pytest.approx(noise, abs=1e-6 + 0.2 * noise)
    assert_same_split(s, data.synthetic_regression(n=800, n_features=5, noise=noise, seed=2))
    assert differs(s, data.synthetic_regression(n=800, n_features=5, noise=noise, seed=5))


# ------------------------------------------------------------------ corpus and text

def test_corpus_ships_as_clean_package_data():
    files = [p for p in (resources.files("hyperopt") / "corpus").iterdir()
             if p.name.endswith(".txt")]
    assert files
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    globs = cfg["options.package_data"]["hyperopt"].split()
    for p in files:
        assert any(fnmatch.fnmatch(f"corpus/{p.name}", g) for g in globs)  # installed with the package
        raw = p.read_bytes()
        txt = raw.decode("utf-8")  # strict: raises on bad bytes
        assert txt.isascii() and "\r" not in txt and "\t" not in txt
        assert len(txt) > 20_000 and txt.endswith("\n") and txt.count("\n") > 500
        assert len(set(txt.split())) > 1000  # real prose, not a repeated filler
    text = data.load_corpus()
    assert text == (resources.files("hyperopt") / "corpus" / "coriolanus.txt").read_text("utf-8")
    assert "MARCIUS:" in text and "Before we proceed any further, hear me speak." in text
    with pytest.raises(ValueError, match="coriolanus"):
        data.load_corpus("no_such_corpus")


def test_vocab_encode_decode():
    text = data.load_corpus()
    vocab = data.corpus_vocab()
    assert list(vocab) == sorted(set(text))
    s = "Speak, speak.\n"
    ids = data.encode(s)
    assert ids.dtype == np.int64 and [vocab[i] for i in ids] == list(s)
    assert data.decode(ids) == s and data.decode(ids.reshape(2, 7)) == s
    assert data.decode(data.encode(text[:3000])) == text[:3000]
    with pytest.raises(ValueError):
        data.encode("\u00e9")
    with pytest.raises(ValueError):
        data.decode([len(vocab)])


@pytest.mark.parametrize("seed", [0, 1])
def test_text_windows_are_contiguous_and_disjoint(seed):
    L = 16
    text = data.load_corpus()
    s = data.text(seq_len=L, seed=seed)
    assert s.vocab == data.corpus_vocab()
    (a0, a1), (b0, b1), (c0, c1) = s.spans
    assert a0 == 0 and a1 == b0 and b1 == c0 and c1 == len(text)  # contiguous, disjoint, complete
    assert (b1 - b0) == pytest.approx(0.1 * len(text), abs=1)
    assert (c1 - c0) == pytest.approx(0.1 * len(text), abs=1)
    for d, (lo, hi) in zip(s, s.spans):
        assert d.x.dtype == d.y.dtype == np.int64 and d.x.shape == d.y.shape
        assert d.x.shape[1] == L and len(d.x) > 0
        np.testing.assert_array_equal(d.y[:, :-1], d.x[:, 1:])  # y is x shifted by one
        # rows are consecutive non-overlapping windows inside [lo, hi), targets included
        flat = data.decode(d.x)
        start = text.find(flat, lo)
        assert lo <= start < lo + L
        assert start + len(flat) + 1 <= hi
        assert data.decode(d.y) == text[start + 1:start + len(flat) + 1]
    # val and test windows start at their span so every seed is scored on the same data
    assert data.decode(s.val.x[0]) == text[b0:b0 + L]
    assert data.decode(s.test.x[0]) == text[c0:c0 + L]


def test_text_deterministic_seeded_and_truncated():
    assert_same_split(data.text(seed=3), data.text(seed=3))
    base = data.text(seed=0)
    assert any(differs(data.text(seed=k), base) for k in (1, 2, 3))
    for k in (1, 2, 3):  # evaluation data does not depend on the seed
        s = data.text(seed=k)
        np.testing.assert_array_equal(s.val.x, base.val.x)
        np.testing.assert_array_equal(s.test.y, base.test.y)
    short = data.text(seq_len=8, max_chars=2000, val_fraction=0.2, test_fraction=0.1)
    assert short.spans == ((0, 1400), (1400, 1800), (1800, 2000))
    assert short.vocab == base.vocab  # ids do not depend on how much text is used
    with pytest.raises(ValueError, match="seq_len"):
        data.text(seq_len=64, max_chars=500)
    with pytest.raises(ValueError):
        data.text(seq_len=0)


# ------------------------------------------------------------------ Batcher

@pytest.mark.parametrize("seed", [0, 7])
def test_batcher_epochs_cover_every_index_once(seed):
    b = Batcher(120, 30, seed=seed)
    assert b.steps_per_epoch == 4
    orders = []
    for epoch in range(3):
        idx = np.concatenate([b.indices(epoch * 4 + k) for k in range(4)])
        assert idx.dtype == np.int64
        np.testing.assert_array_equal(np.sort(idx), np.arange(120))
        np.testing.assert_array_equal(idx, np.random.default_rng([seed, epoch]).permutation(120))
        orders.append(idx)
    assert not np.array_equal(orders[0], orders[1])


def test_batcher_is_a_pure_function_of_seed_and_step():
    a, b = Batcher(100, 8, seed=3), Batcher(100, 8, seed=3)
    a7, a3 = a.indices(7), a.indices(3)
    b3, b7 = b.indices(3), b.indices(7)
    np.testing.assert_array_equal(a7, b7)
    np.testing.assert_array_equal(a3, b3)
    late = a.indices(10_000)  # a resumed run can start anywhere
    for _ in range(3):
        a.indices(5)
    np.testing.assert_array_equal(Batcher(100, 8, seed=3).indices(10_000), late)
    assert not np.array_equal(Batcher(100, 8, seed=4).indices(3), a3)


def test_batcher_remainders_and_no_shuffle():
    b = Batcher(10, 4, seed=1)  # drop_last: 2 full batches, 2 indices unseen per epoch
    assert b.steps_per_epoch == 2
    epoch = np.concatenate([b.indices(0), b.indices(1)])
    assert len(epoch) == 8 and len(set(epoch.tolist())) == 8
    k = Batcher(10, 4, seed=1, drop_last=False)
    assert k.steps_per_epoch == 3 and [len(k.indices(s)) for s in range(4)] == [4, 4, 2, 4]
    np.testing.assert_array_equal(np.sort(np.concatenate([k.indices(s) for s in range(3)])),
                                  np.arange(10))
    plain = Batcher(10, 5, shuffle=False)
    np.testing.assert_array_equal(plain.indices(1), [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(plain.indices(2), [0, 1, 2, 3, 4])


def test_batcher_batch_gathers_rows(digits0):
    train = digits0.train
    b = Batcher(len(train.x), 32, seed=2)
    xb, yb = b.batch(train, 11)
    idx = b.indices(11)
    np.testing.assert_array_equal(xb, train.x[idx])
    np.testing.assert_array_equal(yb, train.y[idx])
    assert xb.shape == (32, 64)
    with pytest.raises(ValueError, match="n="):
        b.batch(digits0.val, 0)


@pytest.mark.parametrize("args, kwargs, exc, msg", [
    ((10, 11), {}, ValueError, "batch_size"),
    ((10, 0), {}, ValueError, "batch_size"),
    ((0, 1), {}, ValueError, "n must be positive"),
    ((-5, 1), {}, ValueError, "n must be positive"),
    ((10, 2), {"seed": -1}, ValueError, "seed"),
    ((10, 2.5), {}, TypeError, "batch_size"),
])
def test_batcher_rejects_bad_arguments(args, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        Batcher(*args, **kwargs)


def test_batcher_rejects_bad_steps():
    b = Batcher(10, 2)
    with pytest.raises(ValueError, match="step"):
        b.indices(-1)
    with pytest.raises(TypeError, match="step"):
        b.indices(1.0)


# ------------------------------------------------------------------ registry and Split

def test_get_dataset(digits0):
    assert set(data.DATASETS) == {"digits", "digits_images", "synthetic_classification",
                                  "synthetic_regression", "text"}
    assert_same_split(data.get_dataset("digits"), digits0)
    assert data.get_dataset("digits_images", seed=0).train.x.shape[1:] == (1, 8, 8)
    assert data.get_dataset("text", seq_len=8).train.x.shape[1] == 8
    assert data.get_dataset("synthetic_classification", n_classes=2).n_classes == 2
    assert data.get_dataset("synthetic_regression", n=200).train.y.dtype == np.float64
    with pytest.raises(ValueError) as err:
        data.get_dataset("mnist")
    for name in data.DATASETS:
        assert name in str(err.value)


def test_split_metadata_survives_copies(digits0):
    s = pickle.loads(pickle.dumps(digits0))
    assert s.n_classes == 10
    assert_same_split(s, digits0)
    r = digits0._replace(test=digits0.val)
    assert r.n_classes == 10 and r.test is digits0.val
    assert len(digits0) == 3 and "n_classes=10" in repr(digits0)
    t = data.text(max_chars=3000)
    assert pickle.loads(pickle.dumps(t)).vocab == t.vocab


# ------------------------------------------------------------------ your own arrays and files

def test_from_arrays_stratifies_integer_labels():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 4))
    y = np.repeat(np.arange(5), 100)
    s = Split.from_arrays(X, y, val=0.2, test=0.2, seed=3)
    assert s.n_classes == 5 and [len(d.x) for d in s] == [300, 100, 100]
    for d in s:   # stratified: every class in its share
        assert np.all(np.bincount(d.y, minlength=5) == len(d.y) // 5)
    joined = np.concatenate(s.indices)
    assert sorted(joined.tolist()) == list(range(500))   # disjoint, every row used
    for d, idx in zip(s, s.indices):
        np.testing.assert_array_equal(d.x, X[idx])
        np.testing.assert_array_equal(d.y, y[idx])
    assert_same_split(s, Split.from_arrays(X, y, val=0.2, test=0.2, seed=3))
    assert differs(s, Split.from_arrays(X, y, val=0.2, test=0.2, seed=4))


def test_from_arrays_float_targets_get_a_plain_split():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 3)).astype(np.float32)
    y = X @ np.array([1.0, 2.0, 3.0], np.float32)
    s = Split.from_arrays(X, y, val=0.1, test=0.3)
    assert s.n_classes is None and sum(len(d.x) for d in s) == 100
    assert [len(d.x) for d in s] == pytest.approx([60, 10, 30], abs=1)
    assert s.train.x.dtype == np.float32 and s.train.y.dtype == np.float32
    # bool labels are classes; images keep their shape
    imgs = rng.standard_normal((60, 1, 4, 4))
    s = Split.from_arrays(imgs, rng.random(60) > 0.5)
    assert s.n_classes == 2 and s.train.y.dtype == np.int64 and s.train.x.shape[1:] == (1, 4, 4)


@pytest.mark.parametrize("X,y,kw,needle", [
    (np.zeros(10), np.zeros(10, int), {}, "X must have shape (N, features...)"),
    (np.zeros((10, 2)), np.zeros(9, int), {}, "same number of rows"),
    (np.zeros((10, 2)), np.array(["a"] * 10), {}, "y must hold numbers"),
    (np.full((10, 2), np.nan), np.zeros(10, int), {}, "X has non-finite values"),
    (np.zeros((10, 2)), np.arange(10) - 1, {}, "class labels must be integers 0..C-1"),
    (np.zeros((10, 2)), np.zeros(10, int), {"val": 1.0}, "val must be a fraction in [0, 1)"),
    (np.zeros((10, 2)), np.zeros(10, int), {"test": -0.1}, "test must be a fraction"),
    (np.zeros((10, 2)), np.zeros(10, int), {"val": 0.5, "test": 0.5}, "val + test must be < 1"),
    (np.zeros((10, 2)), np.zeros(10, int), {"val": 0.01}, "less than one example"),
    (np.zeros((20, 2)), np.r_[np.zeros(19, int), 1], {}, "cannot stratify"),
    (np.zeros((10, 2)), np.zeros(10), {"stratify": True}, "stratify=True needs integer"),
    (np.zeros((2, 2)), np.zeros(2, int), {}, "at least 3 examples"),
])
def test_from_arrays_refuses_bad_input(X, y, kw, needle):
    with pytest.raises(ValueError) as e:
        Split.from_arrays(X, y, **kw)
    assert needle in str(e.value)


def test_load_arrays_npz_and_csv(tmp_path):
    X = np.arange(24.0).reshape(8, 3)
    y = np.arange(8) % 2
    np.savez(tmp_path / "a.npz", X=X, y=y)
    np.savez(tmp_path / "b.npz", x=X, y=y.astype(float))
    for name, ydtype in (("a.npz", np.int64), ("b.npz", np.float64)):
        X2, y2 = data.load_arrays(tmp_path / name)
        np.testing.assert_array_equal(X2, X)
        assert y2.dtype == ydtype
    (tmp_path / "h.csv").write_text("# comment\nf1,f2,f3,label\n\n" +
                                    "".join(f"{a},{b},{c},{t}\n" for (a, b, c), t in zip(X, y)))
    X3, y3 = data.load_arrays(tmp_path / "h.csv")
    np.testing.assert_array_equal(X3, X)
    assert y3.dtype == np.int64 and np.array_equal(y3, y)     # whole numbers: class labels
    X4, y4 = data.load_arrays(tmp_path / "h.csv", target="f1")   # by name
    np.testing.assert_array_equal(y4, X[:, 0])
    np.testing.assert_array_equal(X4, np.c_[X[:, 1:], y])
    X5, y5 = data.load_arrays(tmp_path / "h.csv", target=1)       # by index
    np.testing.assert_array_equal(y5, X[:, 1])
    (tmp_path / "t.csv").write_text("".join(f"{a}\t{b}\t{c / 7}\n" for a, b, c in X))
    X6, y6 = data.load_arrays(tmp_path / "t.csv")                # no header, tabs, float target
    assert X6.shape == (8, 2) and y6.dtype == np.float64
    s = data.load_split(tmp_path / "h.csv", val=0.25, test=0.25)
    assert [len(d.x) for d in s] == [4, 2, 2] and s.n_classes == 2


@pytest.mark.parametrize("name,content,kw,needle", [
    ("a.txt", "1,2\n", {}, "expected a .npz or .csv file"),
    ("missing.csv", None, {}, "no such file"),
    ("t.npz", "hello", {}, "not an .npz file"),
    ("n.npz", {"features": np.zeros((3, 2)), "labels": np.zeros(3)}, {},
     "expected arrays named X and y (or x and y); found features (3, 2) float64, labels"),
    ("o.npz", {"X": np.array([None, 1], dtype=object), "y": np.zeros(2)}, {},
     "Python objects"),
    ("p.npz", {"X": np.zeros((3, 2)), "y": np.zeros(3)}, {"target": "y"},
     "a target column applies to .csv files"),
    ("e.csv", "\n\n", {}, "no rows"),
    ("h.csv", "a,b\n", {}, "a header and no data rows"),
    ("one.csv", "1\n2\n", {}, "one column"),
    ("x.csv", "1,2\n3,four\n", {}, "line 2, column 2: 'four' is not a number"),
    ("r.csv", "1,2,3\n4,5\n", {}, "line 2: 2 columns, expected 3"),
    ("c.csv", "a,b\n1,2\n", {"target": "z"}, "no column named 'z'; columns: ['a', 'b']"),
    ("n.csv", "1,2\n3,4\n", {"target": "b"}, "has no header row"),
    ("i.csv", "1,2\n3,4\n", {"target": 5}, "target column 5 is out of range"),
    ("b.csv", b"\xff\xfe\x00\x01", {}, "not a text file"),
])
def test_load_arrays_refuses_bad_files(name, content, kw, needle, tmp_path):
    path = tmp_path / name
    if isinstance(content, dict):
        np.savez(path, **content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ValueError) as e:
        data.load_arrays(path, **kw)
    assert needle in str(e.value) and str(path) in str(e.value)
