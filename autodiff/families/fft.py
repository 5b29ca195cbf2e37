"""Discrete Fourier transforms on traced values: np.fft.

np.fft.fft, ifft, rfft, irfft, hfft, ihfft (with n, axis, norm), fft2, ifft2,
rfft2, irfft2, fftn, ifftn, rfftn, irfftn (with s, axes, norm), fftshift and
ifftshift.  Values are numpy's: the n-dimensional transforms are the same
sequence of one-dimensional ones numpy runs (np.fft._pocketfft).

Three primitives, each a one-dimensional transform along ``axis`` whose input
is first cropped or zero-padded to its length, as numpy does:

    fft    complex -> complex, length n (``inverse`` for ifft)
    rfft   real -> complex, n real points to n // 2 + 1 bins
    irfft  complex -> real, n // 2 + 1 bins to n real points

All three are linear, so the jvp applies the same transform to the tangent.
The vjp is the transpose under the pairing re(sum(u * v)) of
autodiff/families/complex.py (JAX's convention; not the conjugate transpose).
With R the crop/pad of the input to the transform's length and R^T its
transpose (pad/crop back to the input's length):

    fft:   the DFT matrix is symmetric, so the transpose of fft(norm) is
           fft(norm) itself, and of ifft(norm) ifft(norm):  g -> R^T fft(g)
    rfft:  rfft = crop to n // 2 + 1 bins o fft o (R -> C), so
           g -> R^T re(fft(zero-pad g to n bins, norm))
    irfft: irfft(X)_j = c re(sum_k d_k X_k w^jk) with w = exp(2 pi i / n),
           d_0 = 1, d_k = 2 for the bins that stand for a pair (k, n - k),
           d_{n/2} = 1 for even n (numpy ignores the imaginary parts of the
           edge bins), and c the inverse scale of the norm, so
           g -> R^T (d * conj(rfft(g, norm=swapped)))
           where "swapped" exchanges "backward" and "forward": the forward
           transform of the swapped norm has the inverse's scale c.

Second derivatives are zero: the rules do not depend on the primal.
"""
from __future__ import annotations

import warnings

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from .. import ops
from .. import primitives as P
from ..core import is_complex, primal_value
from ..primitives import primitive
from ..rules.base import complex_rules, constant, defjvp, defvjp, shape_of
from .complex import conj_p, real_p

_NORMS = {None: "backward", "backward": "backward", "ortho": "ortho", "forward": "forward"}
_SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _fft(x, n, axis, norm, inverse):
    return (np.fft.ifft if inverse else np.fft.fft)(x, n, axis, norm)


fft_p = primitive("fft", _fft)
rfft_p = primitive("rfft", lambda x, n, axis, norm: np.fft.rfft(x, n, axis, norm))
irfft_p = primitive("irfft", lambda x, n, axis, norm: np.fft.irfft(x, n, axis, norm))


def _resize(g, length, axis):
    """g cropped or zero-padded to ``length`` along ``axis`` (R^T of a transform)."""
    m = shape_of(g)[axis]
    if m == length:
        return g
    if m > length:
        return P.getitem(g, idx=(slice(None),) * axis + (slice(0, length),))
    widths = tuple((0, length - m) if a == axis else (0, 0) for a in range(len(shape_of(g))))
    return P.pad(g, pad_width=widths)


def _pair_weights(n, axis, ndim, dtype):
    """d_k of irfft along ``axis``: 1 for bin 0 (and n/2 for even n), 2 for the others."""
    d = np.full(n // 2 + 1, 2.0, dtype=dtype)
    d[0] = 1.0
    if n % 2 == 0:
        d[-1] = 1.0
    return d.reshape((-1,) + (1,) * (ndim - 1 - axis))


def _fft_vjp(g, ans, x, n, axis, norm, inverse):  # the DFT matrix is symmetric: its own transpose
    return _resize(fft_p(g, n=n, axis=axis, norm=norm, inverse=inverse), shape_of(x)[axis], axis)


def _rfft_vjp(g, ans, x, n, axis, norm):  # fft pads g's n // 2 + 1 bins to n
    return _resize(real_p(fft_p(g, n=n, axis=axis, norm=norm, inverse=False)), shape_of(x)[axis], axis)


def _irfft_vjp(g, ans, x, n, axis, norm):
    weights = _pair_weights(n, axis, len(shape_of(ans)), constant(ans).dtype)
    ct = conj_p(rfft_p(g, n=n, axis=axis, norm=_SWAP[norm])) * weights
    return _resize(ct if is_complex(x) else real_p(ct), shape_of(x)[axis], axis)  # a real x: the real part


defjvp(fft_p, lambda t, ans, x, n, axis, norm, inverse: fft_p(t, n=n, axis=axis + 1, norm=norm, inverse=inverse))
defjvp(rfft_p, lambda t, ans, x, n, axis, norm: rfft_p(t, n=n, axis=axis + 1, norm=norm))
defjvp(irfft_p, lambda t, ans, x, n, axis, norm: irfft_p(t, n=n, axis=axis + 1, norm=norm))
defvjp(fft_p, _fft_vjp)
defvjp(rfft_p, _rfft_vjp)
defvjp(irfft_p, _irfft_vjp)
complex_rules(fft_p, rfft_p, irfft_p)


# -- numpy's functions ------------------------------------------------------------------
def _norm(norm):
    if norm not in _NORMS:
        raise ValueError(f'Invalid norm value {norm}; should be "backward", "ortho" or "forward".')
    return _NORMS[norm]


def _no_out(name, out):
    if out is not None:
        raise NotImplementedError(f"np.fft.{name}(..., out=) is not supported on differentiable arrays; "
                                  "assign the result instead")


def _one_d(name, a, n, axis, default_n):
    a = ops._arrayish(a)
    axis = normalize_axis_index(axis, a.ndim)
    n = default_n(a.shape[axis]) if n is None else int(n)
    if n < 1:
        raise ValueError(f"Invalid number of FFT data points ({n}) specified.")
    return a, n, axis


def _real_input(name, a):
    if is_complex(a):
        raise TypeError(f"np.fft.{name} needs real input, got complex values (use np.fft.fft, or take np.real)")
    return a


def fft(a, n=None, axis=-1, norm=None, out=None):
    _no_out("fft", out)
    a, n, axis = _one_d("fft", a, n, axis, lambda m: m)
    return fft_p(a, n=n, axis=axis, norm=_norm(norm), inverse=False)


def ifft(a, n=None, axis=-1, norm=None, out=None):
    _no_out("ifft", out)
    a, n, axis = _one_d("ifft", a, n, axis, lambda m: m)
    return fft_p(a, n=n, axis=axis, norm=_norm(norm), inverse=True)


def rfft(a, n=None, axis=-1, norm=None, out=None):
    _no_out("rfft", out)
    a, n, axis = _one_d("rfft", _real_input("rfft", a), n, axis, lambda m: m)
    return rfft_p(a, n=n, axis=axis, norm=_norm(norm))


def irfft(a, n=None, axis=-1, norm=None, out=None):
    _no_out("irfft", out)
    a, n, axis = _one_d("irfft", a, n, axis, lambda m: 2 * (m - 1))
    return irfft_p(a, n=n, axis=axis, norm=_norm(norm))


def hfft(a, n=None, axis=-1, norm=None, out=None):
    _no_out("hfft", out)
    return irfft(ops.conj(a), n, axis, _SWAP[_norm(norm)])


def ihfft(a, n=None, axis=-1, norm=None, out=None):
    _no_out("ihfft", out)
    return ops.conj(rfft(a, n, axis, _SWAP[_norm(norm)]))


def _cook(a, s, axes, invreal=False):
    """numpy's (s, axes) for the n-dimensional transforms (np.fft._pocketfft._cook_nd_args)."""
    shape = np.shape(primal_value(a))
    if s is None:
        s = [shape[ax] for ax in axes] if axes is not None else list(shape)
        shapeless = True
    else:
        s, shapeless = list(s), False
        if axes is None:
            warnings.warn("`axes` should not be `None` if `s` is not `None` (Deprecated in NumPy 2.0); "
                          "pass axes explicitly", DeprecationWarning, stacklevel=3)
    axes = list(range(-len(s), 0)) if axes is None else list(axes)
    if len(s) != len(axes):
        raise ValueError("Shape and axes have different lengths.")
    if invreal and shapeless:
        s[-1] = (shape[axes[-1]] - 1) * 2
    s = [shape[ax] if n == -1 else n for n, ax in zip(s, axes)]
    return s, axes


def _fftn(a, s, axes, norm, inverse):
    a = ops._arrayish(a)
    s, axes = _cook(a, s, axes)
    for n, ax in reversed(list(zip(s, axes))):  # numpy's order: the last axis first
        a = (ifft if inverse else fft)(a, n, ax, norm)
    return a


def fftn(a, s=None, axes=None, norm=None, out=None):
    _no_out("fftn", out)
    return _fftn(a, s, axes, norm, False)


def ifftn(a, s=None, axes=None, norm=None, out=None):
    _no_out("ifftn", out)
    return _fftn(a, s, axes, norm, True)


def fft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    _no_out("fft2", out)
    return _fftn(a, s, axes, norm, False)


def ifft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    _no_out("ifft2", out)
    return _fftn(a, s, axes, norm, True)


def rfftn(a, s=None, axes=None, norm=None, out=None):
    _no_out("rfftn", out)
    a = _real_input("rfftn", ops._arrayish(a))
    s, axes = _cook(a, s, axes)
    a = rfft(a, s[-1], axes[-1], norm)
    for ii in range(len(axes) - 2, -1, -1):
        a = fft(a, s[ii], axes[ii], norm)
    return a


def irfftn(a, s=None, axes=None, norm=None, out=None):
    _no_out("irfftn", out)
    a = ops._arrayish(a)
    s, axes = _cook(a, s, axes, invreal=True)
    for ii in range(len(axes) - 1):
        a = ifft(a, s[ii], axes[ii], norm)
    return irfft(a, s[-1], axes[-1], norm)


def rfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    _no_out("rfft2", out)
    return rfftn(a, s, axes, norm)


def irfft2(a, s=None, axes=(-2, -1), norm=None, out=None):
    _no_out("irfft2", out)
    return irfftn(a, s, axes, norm)


def _shift(x, axes, inverse):
    x = ops._arrayish(x)
    if axes is None:
        axes = tuple(range(x.ndim))
    elif isinstance(axes, (int, np.integer)):
        axes = (axes,)
    shift = [(-(x.shape[ax] // 2) if inverse else x.shape[ax] // 2) for ax in axes]
    return np.roll(x, shift, axes)  # the arrays family's roll (slices and concatenate)


def fftshift(x, axes=None):
    return _shift(x, axes, False)


def ifftshift(x, axes=None):
    return _shift(x, axes, True)


UFUNCS: dict = {}

FUNCTIONS = {
    np.fft.fft: fft, np.fft.ifft: ifft, np.fft.rfft: rfft, np.fft.irfft: irfft,
    np.fft.hfft: hfft, np.fft.ihfft: ihfft, np.fft.fft2: fft2, np.fft.ifft2: ifft2,
    np.fft.rfft2: rfft2, np.fft.irfft2: irfft2, np.fft.fftn: fftn, np.fft.ifftn: ifftn,
    np.fft.rfftn: rfftn, np.fft.irfftn: irfftn, np.fft.fftshift: fftshift, np.fft.ifftshift: ifftshift,
}
