"""Sweep cases of the "fft" family (autodiff/families/fft.py): the primitives
fft (and ifft), rfft and irfft with n, axis and norm, and the n-dimensional
composites, registered into tests/test_primitives.py's tables by ``add_cases``.

As in tests/cases_complex.py, complex inputs are built inside from real ones
(z = x + 1j y) and complex outputs are returned as np.stack([real part, imaginary part]).
"""
from __future__ import annotations

import numpy as np

F = np.fft


def parts(w):
    return np.stack([np.real(w), np.imag(w)])


def add_cases(case, comp, makers):
    normal, sid = makers["normal"], makers["sid"]

    # fft / ifft: complex and real input, any axis, n padding and cropping, every norm
    for fn, name in [(F.fft, "fft"), (F.ifft, "ifft")]:
        for s, kw in [((4,), {}), ((5,), {"norm": "ortho"}), ((3, 4), {"axis": 0}), ((3, 4), {"n": 6}),
                      ((2, 5), {"n": 3, "norm": "forward"}), ((2, 3, 4), {"axis": 1, "norm": "backward"}),
                      ((1,), {})]:
            tag = name + "-" + sid(s) + "".join(f"-{k}{v}" for k, v in kw.items())
            case("fft", tag, lambda x, y, fn=fn, kw=kw: parts(fn(x + 1j * y, **kw)), normal(s), normal(s))
        case("fft", name + "-real-input", lambda x, fn=fn: parts(fn(x, n=5)), normal((3, 4)))
    case("fft", "linear-combination", lambda x, y: parts(F.fft(x * (0.5 + 2j) - y, axis=-1, norm="ortho") * 1j),
         normal((2, 4)), normal((2, 4)))

    # rfft: real input, even and odd lengths
    for s, kw in [((6,), {}), ((7,), {}), ((4, 3), {"axis": 0}), ((2, 5), {"n": 8}), ((2, 7), {"n": 4}),
                  ((3,), {"norm": "ortho"}), ((2, 3, 4), {"axis": 1, "norm": "forward"}), ((1,), {})]:
        case("rfft", sid(s) + "".join(f"-{k}{v}" for k, v in kw.items()),
             lambda x, kw=kw: parts(F.rfft(x, **kw)), normal(s))

    # irfft: complex input (imaginary parts of the edge bins are ignored, as numpy does)
    for s, kw in [((4,), {}), ((4,), {"n": 7}), ((3, 3), {"axis": 0}), ((2, 3), {"n": 10}),
                  ((2, 6), {"n": 4, "norm": "ortho"}), ((5,), {"norm": "forward"}), ((2, 3, 4), {"axis": 1}),
                  ((2,), {"n": 1})]:
        case("irfft", sid(s) + "".join(f"-{k}{v}" for k, v in kw.items()),
             lambda x, y, kw=kw: F.irfft(x + 1j * y, **kw), normal(s), normal(s))
    case("irfft", "real-input", lambda x: F.irfft(x, n=6), normal((3, 4)))

    # the composites: n-dimensional transforms, Hermitian ones, shifts
    comp("fft2", lambda x, y: parts(F.fft2(x + 1j * y)), normal((3, 4)), normal((3, 4)))
    comp("ifft2-s-ortho", lambda x, y: parts(F.ifft2(x + 1j * y, s=(4, 2), norm="ortho")),
         normal((2, 3, 3)), normal((2, 3, 3)))
    comp("fftn", lambda x, y: parts(F.fftn(x + 1j * y)), normal((2, 3, 2)), normal((2, 3, 2)))
    comp("fftn-repeated-axis", lambda x: parts(F.fftn(x, axes=(0, 0))), normal((3, 2)))
    comp("ifftn-s-axes", lambda x, y: parts(F.ifftn(x + 1j * y, s=(3, 5), axes=(2, 0))),
         normal((2, 3, 4)), normal((2, 3, 4)))
    comp("rfftn", lambda x: parts(F.rfftn(x)), normal((2, 3, 4)))
    comp("rfftn-s-axes-forward", lambda x: parts(F.rfftn(x, s=(3, 5), axes=(0, 2), norm="forward")),
         normal((2, 3, 4)))
    comp("irfftn", lambda x, y: F.irfftn(x + 1j * y), normal((2, 3, 3)), normal((2, 3, 3)))
    comp("irfftn-s-axes-ortho", lambda x, y: F.irfftn(x + 1j * y, s=(4, 5), axes=(1, 2), norm="ortho"),
         normal((2, 3, 3)), normal((2, 3, 3)))
    comp("rfft2", lambda x: parts(F.rfft2(x)), normal((3, 4)))
    comp("irfft2", lambda x, y: F.irfft2(x + 1j * y), normal((3, 4)), normal((3, 4)))
    comp("hfft", lambda x, y: F.hfft(x + 1j * y, n=7), normal((4,)), normal((4,)))
    comp("ihfft", lambda x: parts(F.ihfft(x, norm="ortho")), normal((2, 5)))
    comp("fftshift-ifftshift", lambda x, y: parts(F.fftshift(F.fft(x + 1j * y)) + F.ifftshift(x, axes=0)),
         normal((5, 2)), normal((5, 2)))
    comp("fft-convolution-loss", lambda x, k: np.sum(np.abs(F.irfft(F.rfft(x) * F.rfft(k), n=6)) ** 2),
         normal((6,)), normal((6,)))
    comp("fft-power-spectrum", lambda x: np.abs(F.rfft(x, norm="ortho")) ** 2, normal((2, 8)))
