"""Convolution and pooling layers (2-D and 1-D), computed by im2col and one batched GEMM.

Layers: ``conv2d``, ``conv1d``, ``max_pool2d``, ``avg_pool2d``, ``max_pool1d``, ``avg_pool1d``,
``global_avg_pool``. Images are channels-first: ``(N, C, H, W)``; sequences ``(N, C, L)``. A 1-D
layer is the 2-D layer on ``(N, C, 1, L)``.

im2col reads the input through a strided view (``sliding_window_view``, no Python loop over
positions), copies it once into a ``(N, C·kh·kw, OH·OW)`` matrix and multiplies it by the
``(F, C·kh·kw)`` kernel matrix per sample, which yields the channels-first output without a
transpose. The backward pass scatters window gradients back with a loop over the kh·kw kernel
offsets (col2im), as in the book's ``col2im``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._checks import check_int
from ._scratch import Scratch
from .base import Array, Layer, Shape
from .layers import LAYERS, NO_INPUT_GRAD, add_weights
from .registry import Spec

__all__ = [
    "AvgPool1D",
    "AvgPool2D",
    "Conv1D",
    "Conv2D",
    "GlobalAvgPool",
    "MaxPool1D",
    "MaxPool2D",
    "conv_output_size",
    "scatter_windows",
    "window_view",
]

Pair = tuple[int, int]


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling along one axis: ``(size + 2p − k) // s + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def window_view(
    x: Array, kernel: Pair, stride: Pair, padding: Pair, pad_value: float = 0.0
) -> Array:
    """Read-only view of the sliding windows of ``x``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel, stride, padding : (int, int)

    Returns
    -------
    ndarray, shape (N, C, OH, OW, kh, kw)
    """
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    windows = sliding_window_view(x, kernel, axis=(2, 3))
    return windows[:, :, :: stride[0], :: stride[1]]


def scatter_windows(
    dwindows: Array, out: Array, stride: Pair, padding: Pair, padded: Array | None = None
) -> Array:
    """col2im: add window gradients back onto the input grid.

    Parameters
    ----------
    dwindows : ndarray, shape (N, C, OH, OW, kh, kw)
        Gradient with respect to each window element (any strides).
    out : ndarray, shape (N, C, H, W)
        Receives ``dx`` (overwritten).
    padded : ndarray, shape (N, C, H + 2ph, W + 2pw), optional
        Work array for padded inputs.
    """
    N, C, OH, OW, kh, kw = dwindows.shape
    sh, sw = stride
    ph, pw = padding
    target = out if not (ph or pw) else padded
    if target is None:
        target = np.empty((N, C, out.shape[2] + 2 * ph, out.shape[3] + 2 * pw), out.dtype)
    target.fill(0)
    for i in range(kh):
        rows = slice(i, i + sh * (OH - 1) + 1, sh)
        for j in range(kw):
            target[:, :, rows, j : j + sw * (OW - 1) + 1 : sw] += dwindows[:, :, :, :, i, j]
    if target is not out:
        np.copyto(out, target[:, :, ph : ph + out.shape[2], pw : pw + out.shape[3]])
    return out


def _as_pair(layer: str, field: str, value: Any, *, minimum: int) -> Pair:
    """``value`` (an int or a pair of ints) as a pair, validated against ``minimum``."""
    items = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(items) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum for v in items
    ):
        raise ValueError(
            f"layer {layer!r}: {field} must be an integer >= {minimum} or a pair of them, "
            f"got {value!r}"
        )
    return int(items[0]), int(items[1])


class _SpatialLayer(Layer):
    """Shared plumbing of the 2-D/1-D conv and pooling layers (1-D runs as 2-D with H = 1)."""

    spatial_dims: ClassVar[int] = 2

    kernel_size: Any
    stride: Any
    padding: Any

    def _geometry(self, input_shape: Shape, kernel: Any, stride: Any) -> tuple[Pair, Pair, Pair]:
        """Validate the input rank and return (kernel, stride, padding) as 2-D pairs."""
        name = type(self).registry_name
        rank = self.spatial_dims + 1
        if len(input_shape) != rank:
            layout = "(C, H, W)" if self.spatial_dims == 2 else "(C, L)"
            raise ValueError(
                f"layer {self.name or name!r} expects per-sample input of shape {layout}, "
                f"got {tuple(input_shape)}"
            )
        if self.spatial_dims == 2:
            k = _as_pair(name, "kernel_size", kernel, minimum=1)
            s = _as_pair(name, "stride", stride, minimum=1)
            p = _as_pair(name, "padding", self.padding, minimum=0)
        else:
            owner = f"layer {name!r}"
            k = (1, check_int(owner, "kernel_size", kernel))
            s = (1, check_int(owner, "stride", stride))
            p = (0, check_int(owner, "padding", self.padding, minimum=0))
        spatial = (1, *input_shape[1:]) if self.spatial_dims == 1 else tuple(input_shape[1:])
        out = [conv_output_size(n, kk, ss, pp) for n, kk, ss, pp in zip(spatial, k, s, p)]
        if min(out) < 1:
            raise ValueError(
                f"layer {self.name or name!r}: kernel {k[2 - self.spatial_dims :]} with padding "
                f"{p[2 - self.spatial_dims :]} does not fit the input shape {tuple(input_shape)}"
            )
        self._out_hw = (out[0], out[1])
        return k, s, p

    def _to_2d(self, x: Array) -> Array:
        return x[:, :, None, :] if self.spatial_dims == 1 else x

    def _from_2d(self, y: Array) -> Array:
        return y[:, :, 0, :] if self.spatial_dims == 1 else y

    def _spatial_shape(self, C: int) -> Shape:
        oh, ow = self._out_hw
        return (C, ow) if self.spatial_dims == 1 else (C, oh, ow)


@LAYERS.register("conv2d")
class Conv2D(_SpatialLayer):
    """2-D convolution (cross-correlation, as in every framework).

    Parameters
    ----------
    filters : int
        Number of output channels F.
    kernel_size : int or (int, int)
    stride : int or (int, int)
    padding : int or (int, int)
        Zero padding on each side.
    init, bias_init : spec
        Initializers of ``W`` (shape ``(F, C, kh, kw)``; fan_in = C·kh·kw) and ``b`` (``(F,)``).
    use_bias : bool

    Input shape ``(N, C, H, W)``; output ``(N, F, OH, OW)`` with
    ``OH = (H + 2·padding − kh) // stride + 1``.
    """

    decay_params: ClassVar[tuple[str, ...]] = ("W",)
    example_kwargs: ClassVar[dict[str, Any]] = {
        "filters": 2,
        "kernel_size": 3,
        "stride": 2,
        "padding": 1,
    }
    example_input_shape: ClassVar[Shape] = (2, 5, 6)

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        init: Spec = "he_normal",
        bias_init: Spec = "zeros",
        use_bias: bool = True,
    ) -> None:
        self.filters = filters
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.init = init
        self.bias_init = bias_init
        self.use_bias = use_bias

    def build(
        self, input_shape: Shape, *, rng: np.random.Generator, dtype: Any = np.float32
    ) -> Shape:
        name = type(self).registry_name
        F = check_int(f"layer {name!r}", "filters", self.filters)
        self._k, self._s, self._p = self._geometry(input_shape, self.kernel_size, self.stride)
        C = int(input_shape[0])
        kernel = (F, C, *self._k[2 - self.spatial_dims :])
        self._scratch = Scratch()
        add_weights(self, kernel, F, rng=rng, dtype=dtype)
        return super().build(input_shape, rng=rng, dtype=dtype)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._spatial_shape(int(self.filters))

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        W = self.params["W"]
        x = self._to_2d(x.astype(W.dtype, copy=False))
        N, C = x.shape[:2]
        (kh, kw), (OH, OW), F = self._k, self._out_hw, W.shape[0]
        windows = window_view(x, self._k, self._s, self._p)
        col = self._scratch.empty("col", (N, C, kh, kw, OH, OW), W.dtype)
        np.copyto(col, windows.transpose(0, 1, 4, 5, 2, 3))
        self._col = col.reshape(N, C * kh * kw, OH * OW)
        self._x_shape = x.shape
        out = self._scratch.empty("out", (N, F, OH * OW), W.dtype)
        np.matmul(W.reshape(F, -1), self._col, out=out)
        if self.use_bias:
            out += self.params["b"][:, None]
        return self._from_2d(out.reshape(N, F, OH, OW))

    def backward(self, dout: Array) -> Array:
        W = self.params["W"]
        N, F = dout.shape[:2]
        d3 = np.ascontiguousarray(dout).reshape(N, F, -1)
        col = self._col
        # dW = Σ_n dout_n · col_nᵀ: one small GEMM per sample, then a sum over the batch
        per_sample = self._scratch.empty("dW_n", (N, F, col.shape[1]), W.dtype)
        np.matmul(d3, col.transpose(0, 2, 1), out=per_sample)
        np.sum(per_sample, axis=0, out=self.grads["W"].reshape(F, -1))
        if self.use_bias:
            np.sum(d3, axis=(0, 2), out=self.grads["b"])
        if not self.needs_input_grad:
            return NO_INPUT_GRAD
        dcol = self._scratch.empty("dcol", col.shape, W.dtype)
        np.matmul(W.reshape(F, -1).T, d3, out=dcol)
        N, C, H, Wd = self._x_shape
        (kh, kw), (OH, OW) = self._k, self._out_hw
        dwindows = dcol.reshape(N, C, kh, kw, OH, OW).transpose(0, 1, 4, 5, 2, 3)
        dx = self._scratch.empty("dx", self._x_shape, W.dtype)
        ph, pw = self._p
        padded = (
            self._scratch.empty("dx_pad", (N, C, H + 2 * ph, Wd + 2 * pw), W.dtype)
            if ph or pw
            else None
        )
        scatter_windows(dwindows, dx, self._s, self._p, padded)
        return self._from_2d(dx)


@LAYERS.register("conv1d")
class Conv1D(Conv2D):
    """1-D convolution over sequences (MNIST-1D): input ``(N, C, L)``, output ``(N, F, OL)``.

    Same parameters as :class:`Conv2D` with integer ``kernel_size``/``stride``/``padding``;
    ``W`` has shape ``(F, C, k)``.
    """

    spatial_dims: ClassVar[int] = 1
    example_kwargs: ClassVar[dict[str, Any]] = {
        "filters": 3,
        "kernel_size": 3,
        "stride": 2,
        "padding": 1,
    }
    example_input_shape: ClassVar[Shape] = (2, 9)

    def __init__(
        self,
        filters: int,
        kernel_size: int = 5,
        stride: int = 1,
        padding: int = 0,
        init: Spec = "he_normal",
        bias_init: Spec = "zeros",
        use_bias: bool = True,
    ) -> None:
        # the 2-D code multiplies by W viewed as (F, C·k), the same matrix for (F, C, k)
        super().__init__(filters, kernel_size, stride, padding, init, bias_init, use_bias)


class _Pool2D(_SpatialLayer):
    """Shared parts of max and average pooling (no parameters)."""

    pad_value: ClassVar[float] = 0.0
    example_input_shape: ClassVar[Shape] = (2, 5, 6)

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        self.pool_size = pool_size
        self.stride = stride
        self.padding = padding

    def build(
        self, input_shape: Shape, *, rng: np.random.Generator, dtype: Any = np.float32
    ) -> Shape:
        stride = self.pool_size if self.stride is None else self.stride
        self._k, self._s, self._p = self._geometry(input_shape, self.pool_size, stride)
        name = type(self).registry_name
        if self._p[0] >= self._k[0] or self._p[1] >= self._k[1]:
            raise ValueError(f"layer {name!r}: padding must be smaller than pool_size")
        # non-overlapping windows without padding (the usual 2×2/2) take a fast path that works
        # on the kh·kw strided sub-grids instead of copying every window
        self._tiled = self._s == self._k and self._p == (0, 0)
        self._scratch = Scratch()
        return super().build(input_shape, rng=rng, dtype=dtype)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._spatial_shape(int(input_shape[0]))

    def _tiles(self, a: Array) -> list[Array]:
        """The kh·kw strided sub-grids of ``a`` (N, C, H, W), each of shape (N, C, OH, OW)."""
        (kh, kw), (OH, OW) = self._k, self._out_hw
        return [a[:, :, i : OH * kh : kh, j : OW * kw : kw] for i in range(kh) for j in range(kw)]

    def _tiled_dx(self, shape: Shape, dtype: Any) -> Array:
        """Work array for dx; rows/columns outside every window (odd sizes) stay zero."""
        dx = self._scratch.empty("dx", shape, dtype)
        (kh, kw), (OH, OW) = self._k, self._out_hw
        if shape[2] != OH * kh or shape[3] != OW * kw:
            dx.fill(0)
        return dx

    def _windows(self, x: Array) -> Array:
        """Contiguous copy of the windows, shape (N, C, OH, OW, kh·kw)."""
        N, C = x.shape[:2]
        (kh, kw), (OH, OW) = self._k, self._out_hw
        flat = self._scratch.empty("windows", (N, C, OH, OW, kh * kw), x.dtype)
        view = window_view(x, self._k, self._s, self._p, self.pad_value)
        np.copyto(flat.reshape(N, C, OH, OW, kh, kw), view)
        self._x_shape = x.shape
        return flat

    def _scatter(self, dflat: Array) -> Array:
        N, C, H, W = self._x_shape
        ph, pw = self._p
        dx = self._scratch.empty("dx", self._x_shape, dflat.dtype)
        padded = (
            self._scratch.empty("dx_pad", (N, C, H + 2 * ph, W + 2 * pw), dflat.dtype)
            if ph or pw
            else None
        )
        scatter_windows(dflat.reshape(*dflat.shape[:4], *self._k), dx, self._s, self._p, padded)
        return self._from_2d(dx)


@LAYERS.register("max_pool2d")
class MaxPool2D(_Pool2D):
    """Max pooling over ``pool_size`` windows (stride defaults to ``pool_size``).

    Input ``(N, C, H, W)``; output ``(N, C, OH, OW)``. Padding uses −inf, so a pad cell never wins.
    The gradient goes to the first maximum of each window (PyTorch's convention for ties).
    """

    pad_value: ClassVar[float] = -np.inf

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        x = self._to_2d(x)
        if self._tiled:
            return self._from_2d(self._tiled_forward(x))
        flat = self._windows(x)
        self._argmax = np.expand_dims(flat.argmax(axis=-1), -1)
        return self._from_2d(np.take_along_axis(flat, self._argmax, axis=-1)[..., 0])

    def _tiled_forward(self, x: Array) -> Array:
        # A running max over the sub-grids; `arg` keeps the index of the sub-grid that holds the
        # first maximum (strictly greater replaces), as a max over k·[x_k > running max].
        sc, shape = self._scratch, (*x.shape[:2], *self._out_hw)
        tiles = self._tiles(x)
        out = sc.empty("out", shape, x.dtype)
        np.copyto(out, tiles[0])
        arg = sc.empty("arg", shape, np.uint8)
        arg.fill(0)
        better = sc.empty("better", shape, np.bool_)
        code = sc.empty("code", shape, np.uint8)
        for k, tile in enumerate(tiles[1:], 1):
            np.greater(tile, out, out=better)
            np.maximum(out, tile, out=out)
            np.multiply(better, np.uint8(k), out=code)
            np.maximum(arg, code, out=arg)
        self._arg, self._x_shape = arg, x.shape
        return out

    def backward(self, dout: Array) -> Array:
        dout = self._to_2d(dout)
        if self._tiled:
            dx = self._tiled_dx(self._x_shape, dout.dtype)
            hit = self._scratch.empty("hit", dout.shape, np.bool_)
            for k, tile in enumerate(self._tiles(dx)):
                np.equal(self._arg, np.uint8(k), out=hit)
                np.multiply(dout, hit, out=tile)
            return self._from_2d(dx)
        dflat = self._scratch.empty("dwindows", (*dout.shape, self._k[0] * self._k[1]), dout.dtype)
        dflat.fill(0)
        np.put_along_axis(dflat, self._argmax, dout[..., None], axis=-1)
        return self._scatter(dflat)


@LAYERS.register("avg_pool2d")
class AvgPool2D(_Pool2D):
    """Average pooling (zero padding counts in the average, like PyTorch's default).

    Input ``(N, C, H, W)``; output ``(N, C, OH, OW)``.
    """

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        x = self._to_2d(x)
        if self._tiled:
            tiles = self._tiles(x)
            out = self._scratch.empty("out", (*x.shape[:2], *self._out_hw), x.dtype)
            np.copyto(out, tiles[0])
            for tile in tiles[1:]:
                out += tile
            out *= 1.0 / len(tiles)
            self._x_shape = x.shape
            return self._from_2d(out)
        return self._from_2d(self._windows(x).mean(axis=-1))

    def backward(self, dout: Array) -> Array:
        dout = self._to_2d(dout)
        size = self._k[0] * self._k[1]
        if self._tiled:
            dx = self._tiled_dx(self._x_shape, dout.dtype)
            for tile in self._tiles(dx):
                np.multiply(dout, 1.0 / size, out=tile)
            return self._from_2d(dx)
        dflat = np.broadcast_to((dout / size)[..., None], (*dout.shape, size))
        return self._scatter(dflat)


@LAYERS.register("max_pool1d")
class MaxPool1D(MaxPool2D):
    """Max pooling over sequences: input ``(N, C, L)``, output ``(N, C, OL)``."""

    spatial_dims: ClassVar[int] = 1
    example_input_shape: ClassVar[Shape] = (2, 9)

    def __init__(self, pool_size: int = 2, stride: int | None = None, padding: int = 0) -> None:
        super().__init__(pool_size, stride, padding)


@LAYERS.register("avg_pool1d")
class AvgPool1D(AvgPool2D):
    """Average pooling over sequences: input ``(N, C, L)``, output ``(N, C, OL)``."""

    spatial_dims: ClassVar[int] = 1
    example_input_shape: ClassVar[Shape] = (2, 9)

    def __init__(self, pool_size: int = 2, stride: int | None = None, padding: int = 0) -> None:
        super().__init__(pool_size, stride, padding)


@LAYERS.register("global_avg_pool")
class GlobalAvgPool(Layer):
    """Mean over every spatial axis: input ``(N, C, *spatial)``, output ``(N, C)``."""

    example_input_shape: ClassVar[Shape] = (3, 4, 2)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 2:
            raise ValueError(
                f"layer 'global_avg_pool' expects per-sample input (C, *spatial), got {input_shape}"
            )
        return (int(input_shape[0]),)

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        return x.reshape(x.shape[0], x.shape[1], -1).mean(axis=2)

    def backward(self, dout: Array) -> Array:
        assert self.input_shape is not None
        size = int(np.prod(self.input_shape[1:]))
        dx = np.broadcast_to((dout / size)[:, :, None], (*dout.shape, size))
        return dx.reshape(dout.shape[0], *self.input_shape)
