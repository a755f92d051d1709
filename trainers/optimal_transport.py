"""Batched optimal transport on torch tensors: entropic OT (Sinkhorn), exact OT, envelope OT values.

The API follows POT's functional style (``ot.sinkhorn``, ``ot.emd``, ``ot.emd2``) but every function is
batched over the leading dimensions of ``cost``:

- :func:`sinkhorn` -- entropic OT plans, ``cost [..., m, n] -> plan [..., m, n]``.
- :func:`exact_ot` -- exact (unregularised) OT plans; on device for small uniform square problems, POT's
  ``ot.emd`` otherwise.
- :func:`hungarian` -- exact OT of uniform square problems as assignments (SciPy's
  ``linear_sum_assignment``; an on-device fast path for n <= 6).
- :func:`ot_value` -- ``<plan(cost.detach()), cost>`` with the gradient flowing through ``cost`` only
  (the envelope gradient used by Prompt-OT, ALIGN and SOT-GLP).

Conventions
-----------
- Marginals ``a [..., m]`` and ``b [..., n]`` default to uniform (``1/m``, ``1/n``). An entry with zero mass
  is *padding*: its row (column) of the plan is zero and the rest of the plan equals the solution of the
  problem without that entry. This is how sets of different sizes share one batch: pad the cost with any
  value (finite values are cheapest) and give the padded entries zero mass.
- Plans are computed without an autograd graph, in float64 for float64 costs and in float32 otherwise
  (float16 / bfloat16 costs are upcast). The returned plan has that compute dtype.

Two stop rules are offered by :func:`sinkhorn` (keyword ``stop_rule``):

- ``"tol"`` (default): each problem stops independently once the L1 violation of its row marginal is
  below ``tol``; the test runs every ``check_every`` iterations, so there is no host sync per iteration.
  Small problems that converge slowly are finished by Newton's method (see ``method`` below).
- ``"upstream"``: the rule of the released ALIGN / PLOT / SOT-GLP code (see ``stop_rule`` below), for
  reproducing their plans.

A problem that reaches the iteration cap unconverged triggers a :class:`SinkhornCapWarning`, once per
call site (see :func:`sinkhorn`).
"""
import functools
import itertools
import math
import os
import sys
import warnings

import numpy as np
import torch

__all__ = ["sinkhorn", "unbalanced_sinkhorn", "exact_ot", "hungarian", "ot_value", "SinkhornCapWarning"]

# Largest cost range over eps for which plain multiplicative updates are used, so that the kernel
# exp(-cost/eps) stays far from under/overflow: the span (max - min) of a problem's cost, or else of its
# row/column-reduced cost; beyond it, log-domain updates.
KERNEL_MAX_RANGE = {torch.float32: 40.0, torch.float64: 500.0}
# On CPU, problems are solved in chunks whose kernel (K and its transpose) fits in this many bytes,
# so that all iterations of a chunk run from cache instead of streaming the whole batch from memory.
CPU_CHUNK_BYTES = 4 << 20
# On CPU, batches with at most this many cost entries iterate on NumPy float64 arrays: for tiny
# problems (Prompt-OT's single 4 x 4 plan per step) torch's per-operation overhead dominates.
SMALL_NUMPY_NUMEL = 4096
# Problems with m + n at most this size that Sinkhorn has not solved after NEWTON_AFTER iterations are
# finished by Newton's method (method "auto"): plans close to a permutation make Sinkhorn crawl for
# thousands of iterations, while Newton converges quadratically at O((m + n)^3) per step.
NEWTON_MAX_DIM = 32
NEWTON_AFTER = 50
NEWTON_DAMPING = 1e-13
MAX_LINE_SEARCH = 40
# Exact OT of uniform square problems up to this size enumerates all permutations on device.
MAX_PERMUTATION_SIZE = 6
# Problems with fewer than this many cost entries are iterated in the problem-minor layout.
BATCH_LAST_MAX_SIZE = 64
# Converged problems are removed from the iterated batch once at most this fraction of it still runs.
COMPACT_KEEP_FRACTION = 0.5
# Stop rule "upstream": problems with at most this many columns are iterated in the problem-minor layout
# (elementwise products vectorised over problems beat batched matrix-vector products of narrow matrices).
UPSTREAM_LAST_MAX_N = 16


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------
def _compute_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def _marginal(x, batch_shape, size, dtype, device):
    """Marginal ``x`` (``None``, ``[size]`` or ``[..., size]``) as a ``[P, size]`` tensor."""
    if x is None:
        return torch.full((math.prod(batch_shape), size), 1.0 / size, dtype=dtype, device=device)
    x = torch.as_tensor(x).detach().to(device=device, dtype=dtype)
    if x.shape[-1:] != (size,):
        raise ValueError(f"marginal of shape {tuple(x.shape)} does not match cost size {size}")
    if (x < 0).any():
        raise ValueError("marginals must be non-negative")
    return torch.broadcast_to(x, batch_shape + (size,)).reshape(-1, size)


def _prepare(cost, a, b, dtype=None):
    """Flatten ``cost [..., m, n]`` to ``[P, m, n]`` in the compute dtype (default: see the module docstring),
    with ``a [P, m]``, ``b [P, n]``.

    Returns ``(C, a, b, batch_shape, padded)``; ``padded`` says whether any marginal entry is zero.
    """
    if cost.dim() < 2 or 0 in cost.shape[-2:]:
        raise ValueError(f"cost must have shape [..., m, n] with m, n > 0, got {tuple(cost.shape)}")
    batch_shape, (m, n) = tuple(cost.shape[:-2]), cost.shape[-2:]
    dtype = dtype or _compute_dtype(cost.dtype)
    C = cost.detach().to(dtype).reshape(-1, m, n)
    a_ = _marginal(a, batch_shape, m, dtype, cost.device)
    b_ = _marginal(b, batch_shape, n, dtype, cost.device)
    padded = (a is not None and bool((a_ == 0).any())) or (b is not None and bool((b_ == 0).any()))
    return C, a_, b_, batch_shape, padded


def _reduced_cost(C, a, b, padded):
    """Row- then column-reduced cost ``[P, m, n]``: min 0 in every valid row and column, 0 on padding.

    Subtracting row and column constants leaves the entropic plan unchanged; it is the stabilisation
    that keeps ``exp(-cost/eps)`` in range (the constants are absorbed dual potentials).
    """
    if not padded:
        C = C - C.amin(-1, keepdim=True)
        return C.sub_(C.amin(-2, keepdim=True))
    rows, cols = (a > 0)[:, :, None], (b > 0)[:, None, :]
    C = C.masked_fill(~rows, math.inf).masked_fill_(~cols, math.inf)
    C.sub_(C.amin(-1, keepdim=True).masked_fill_(~rows, 0.0))
    C.sub_(C.amin(-2, keepdim=True).masked_fill_(~cols, 0.0))
    return C.masked_fill_(~rows, 0.0).masked_fill_(~cols, 0.0)


def _shifted_cost(C, a, b, padded):
    """Cost minus its minimum over the valid entries, ``+inf`` on padding, and its span ``[P]``.

    The span (max - min over the valid entries) bounds the range of ``exp(-cost/eps)``; it is NaN when
    the padding holds NaN or infinite costs (such problems take the :func:`_reduced_cost` route). Only
    whole-problem reductions and float penalties: much cheaper than masked row/column minima.
    """
    if not padded:
        lo, hi = C.amin((1, 2)), C.amax((1, 2))
        return C - lo[:, None, None], hi - lo
    pen_a = torch.zeros_like(a).masked_fill_(a == 0, math.inf)[:, :, None]
    pen_b = torch.zeros_like(b).masked_fill_(b == 0, math.inf)[:, None, :]
    hi = (C - pen_a).sub_(pen_b).amax((1, 2))
    C = (C + pen_a).add_(pen_b)
    lo = C.amin((1, 2))
    return C.sub_(lo[:, None, None]), hi - lo


def _chunk_slices(n_items, item_bytes, device):
    """Slices of ``range(n_items)``: on CPU each covers at most ``CPU_CHUNK_BYTES``, elsewhere one slice."""
    size = n_items if device.type != "cpu" else max(1, CPU_CHUNK_BYTES // max(1, item_bytes))
    return [slice(s, min(s + size, n_items)) for s in range(0, n_items, max(1, size))]


# --------------------------------------------------------------------------------------------------
# kernel products, in one of three memory layouts
#   "row":  problem-major; scalings u [P, m], v [P, n]; K v and K^T u as batched row-vector products
#           v^T K^T and u^T K (K^T materialised on CPU so that both products stream contiguous memory).
#   "last": problem-minor, for small problems (m * n < BATCH_LAST_MAX_SIZE), where batched matmul pays
#           a per-matrix overhead; u [m, P], v [n, P], kernels stored [n, m, P] and [m, n, P], and each
#           product is an elementwise multiply and a sum over the leading axis, vectorised over problems.
#   "col":  problem-major with column vectors u [P, m, 1], v [P, n, 1] and matrix-vector products K v,
#           K^T u (fewest array operations per iteration); used for the NumPy path (tiny batches).
# --------------------------------------------------------------------------------------------------
def _layout(m, n):
    return "last" if m * n < BATCH_LAST_MAX_SIZE else "row"


def _operands(K, layout):
    """Operands ``(A_v, A_u)`` of ``K v`` and ``K^T u`` for torch kernels ``K [P, m, n]`` (see :func:`_apply`)."""
    if layout == "last":
        return K.permute(2, 1, 0).contiguous(), K.permute(1, 2, 0).contiguous()
    KT = K.transpose(1, 2)
    KT = KT.contiguous() if K.device.type == "cpu" else KT
    return (K, KT) if layout == "col" else (KT, K)


def _kernel(Ct, eps, layout):
    """Kernel ``exp(-Ct / eps)`` of torch costs ``Ct [P, m, n]`` as ``(K, A_v, A_u)`` (see :func:`_operands`).

    In the "last" layout ``K [P, m, n]`` is not materialised (None): ``A_u [m, n, P]`` is computed
    directly from the transposed cost, which saves a pass and two transposing copies.
    """
    if layout != "last":
        K = Ct.div(-eps).exp_()
        return (K, *_operands(K, layout))
    P, m, n = Ct.shape
    A_u = torch.empty((m, n, P), dtype=Ct.dtype, device=Ct.device)
    torch.div(Ct.permute(1, 2, 0), -eps, out=A_u).exp_()
    return None, A_u.permute(1, 0, 2).contiguous(), A_u


def _gibbs_plan(K, A_u, u, v, layout, out):
    """``diag(u) K diag(v)`` into ``out [P, m, n]``, from :func:`_kernel`'s ``K`` / ``A_u`` and torch
    scalings in ``layout``."""
    if layout == "last":
        out.copy_((A_u * u[:, None, :]).mul_(v[None, :, :]).permute(2, 0, 1))
        return out
    if layout == "col":
        u, v = u[:, :, 0], v[:, :, 0]
    return torch.mul(K, u[:, :, None], out=out).mul_(v[:, None, :])


def _apply(A, x, layout):
    """``K v`` (``A = A_v``, ``x = v``) or ``K^T u`` (``A = A_u``, ``x = u``) in ``layout`` (torch or NumPy)."""
    if layout == "last":
        return (A * x[:, None, :]).sum(0)
    if layout == "col":
        return A @ x
    return (x[:, None, :] @ A)[:, 0, :]


def _vec(x, layout):
    """Per-problem vectors ``[P, k]`` (torch) in ``layout`` (``[k, P]`` for "last", ``[P, k, 1]`` for "col")."""
    if layout == "col":
        return x[:, :, None]
    return x.T.contiguous() if layout == "last" else x


def _per_problem_sum(x, layout):
    """Sum of per-problem vectors in ``layout`` -> ``[P]``."""
    if layout == "col":
        return x.sum((1, 2)) if isinstance(x, torch.Tensor) else x.sum(axis=(1, 2))
    return x.sum(0) if layout == "last" else x.sum(-1)


# --------------------------------------------------------------------------------------------------
# Sinkhorn iterations (stop rule "tol")
# --------------------------------------------------------------------------------------------------
def _kernel_step(state, data, need_err, layout):
    """One multiplicative Sinkhorn iteration: ``u = a / (K v)``, then ``v = b / (K^T u)``.

    state ``(u, v)``, data ``(A_v, A_u, a, b)`` or, with padding, ``(A_v, A_u, a, b, pad_a, pad_b)``
    (1 on padded entries: ``0 / (K v + 1) = 0`` there whatever the kernel holds; adding 0 elsewhere is
    exact), all in ``layout`` (see :func:`_operands`). Returns the new state and, if ``need_err``, the L1
    row-marginal violation ``[P]`` of the *old* state (its column marginal is exact).
    """
    u, v = state
    A_v, A_u, a, b = data[:4]
    Kv = _apply(A_v, v, layout)
    err = _per_problem_sum(abs(u * Kv - a), layout) if need_err else None
    if len(data) == 4:
        u = a / Kv
        return (u, b / _apply(A_u, u, layout)), err
    pad_a, pad_b = data[4:]
    u = a / (Kv + pad_a)
    return (u, b / (_apply(A_u, u, layout) + pad_b)), err


def _log_step(state, data, need_err):
    """One log-domain Sinkhorn iteration on log-scalings ``f = log u [P, m]``, ``g = log v [P, n]``.

    data ``(logK [P, m, n], log a [P, m], log b [P, n], a [P, m])``; same return values as
    :func:`_kernel_step`.
    """
    f, g = state
    logK, loga, logb, a = data
    lse = torch.logsumexp(logK + g[:, None, :], dim=-1)
    err = (torch.exp(f + lse) - a).abs().sum(-1) if need_err else None
    f = loga - lse
    return (f, logb - torch.logsumexp(logK + f[:, :, None], dim=-2)), err


def _take(x, idx, axis):
    """Entries ``idx`` of ``x`` along ``axis`` (torch or NumPy): a gather, cheaper than boolean masking."""
    return np.take(x, idx, axis) if isinstance(x, np.ndarray) else x.index_select(axis, idx)


def _nonzero(mask):
    """Indices of the True entries of a 1-d mask (torch or NumPy)."""
    return np.flatnonzero(mask) if isinstance(mask, np.ndarray) else torch.nonzero(mask)[:, 0]


def _put(out, idx, values, axis):
    """``out[..., idx] = values`` along ``axis`` (0 or -1), torch or NumPy."""
    if isinstance(out, np.ndarray):
        out[(Ellipsis, idx) if axis == -1 else idx] = values
    else:
        out.index_copy_(axis % out.dim(), idx, values)


def _iterate(step, state, data, out, *, batch_last, max_iter, tol, check_every, capped=None):
    """Iterate ``step`` until every problem converges; results are written into ``out``.

    ``state`` / ``data``: tuples of arrays (torch or NumPy) whose first axis (last axis if
    ``batch_last``) indexes the ``P`` problems. Every ``check_every`` iterations the problems whose error
    is below ``tol`` (or NaN) are stopped: their current state is written out. Stopped problems leave
    the batch once at most ``COMPACT_KEEP_FRACTION`` of it is still running (a gather costs a few
    iterations; until then they keep iterating, which only refines a state already written out).
    ``out = (states, n_iter [P], err [P])`` receives, per problem, the final state, the number of
    iterations done and the final error (NaN flags a numerical failure). ``capped`` (a list, optional)
    receives the number of problems stopped unconverged at ``max_iter`` (counted only when the cap is
    reached: the one extra host sync is on that path).
    """
    out_state, out_iter, out_err = out
    xp = np if isinstance(out_iter, np.ndarray) else torch
    idx = xp.arange(len(out_iter)) if xp is np else torch.arange(len(out_iter), device=out_iter.device)
    axis = -1 if batch_last else 0
    done = None  # problems of the batch already stopped (and written out)
    for it in range(max_iter + 1):
        check = it == max_iter or (it > 0 and it % check_every == 0)
        new_state, err = step(state, data, check)
        if check:
            new = ~(err >= tol) | (it == max_iter)  # converged, numerical failure (NaN) or cap
            if done is not None:
                new &= ~done
            done = new if done is None else done | new
            n_new, n_done = (int(x) for x in (new.sum(), done.sum()))  # the only host syncs
            if n_new:
                pos = _nonzero(new)
                dest = idx[pos]
                for o, s in zip(out_state, state):
                    _put(o, dest, _take(s, pos, axis), axis)
                out_iter[dest] = it
                out_err[dest] = err[pos]
                if it == max_iter and capped is not None:
                    capped.append(int((err[pos] >= tol).sum()))
            if n_done == len(done):
                return
            if len(done) - n_done <= COMPACT_KEEP_FRACTION * len(done):
                keep = _nonzero(~done)
                new_state = tuple(_take(s, keep, axis) for s in new_state)
                data = tuple(_take(d, keep, axis) for d in data)
                idx, done = idx[keep], None
        state = new_state


def _solve_kernel(Ct, a, b, eps, padded, opts, out):
    """Multiplicative Sinkhorn on shifted or reduced costs ``Ct [P, m, n]`` (any value >= 0 or +inf on
    padding); writes ``(plan [P, m, n], n_iter [P], err [P])`` into ``out``."""
    P, m, n = Ct.shape
    small = Ct.device.type == "cpu" and Ct.numel() <= SMALL_NUMPY_NUMEL
    layout = "col" if small else _layout(m, n)
    K, A_v, A_u = _kernel(Ct.double() if small else Ct, eps, layout)
    a_, b_ = _vec(a.to(A_u.dtype), layout), _vec(b.to(A_u.dtype), layout)
    data = (A_v, A_u, a_, b_)
    if padded:
        data += ((a_ == 0).to(A_u.dtype), (b_ == 0).to(A_u.dtype))
    state = ((a_ > 0).to(A_u.dtype), (b_ > 0).to(A_u.dtype))
    if small:  # NumPy float64: far less per-operation overhead than torch on tiny arrays
        data = tuple(x.numpy() for x in data)
        state = tuple(x.numpy() for x in state)
        res = ([s.copy() for s in state], np.zeros(P, dtype=np.int64), np.zeros(P))
    else:
        res = ([s.clone() for s in state], out[1], out[2])
    step = functools.partial(_kernel_step, layout=layout)
    _iterate(step, state, data, res, batch_last=layout == "last", **opts)
    u, v = (torch.as_tensor(x, device=Ct.device) for x in res[0])
    if small:  # float64 plan, then cast into out
        out[0].copy_(_gibbs_plan(K, A_u, u, v, layout, torch.empty_like(K)))
        out[1].copy_(torch.from_numpy(res[1]))
        out[2].copy_(torch.from_numpy(res[2]))
    else:
        _gibbs_plan(K, A_u, u, v, layout, out[0])


def _solve_log(Ct, a, b, eps, padded, opts, out):
    """Log-domain Sinkhorn on reduced costs ``Ct [P, m, n]`` (finite); writes ``(plan, n_iter, err)`` to ``out``."""
    logK = Ct.div(-eps)
    loga, logb = torch.log(a), torch.log(b)  # -inf on padding -> zero plan rows / columns
    state = (torch.zeros_like(a).masked_fill(a == 0, -math.inf), torch.zeros_like(b).masked_fill(b == 0, -math.inf))
    res = ([s.clone() for s in state], out[1], out[2])
    _iterate(_log_step, state, (logK, loga, logb, a), res, batch_last=False, **opts)
    f, g = res[0]
    torch.exp(logK.add_(f[:, :, None]).add_(g[:, None, :]), out=out[0])


def _newton(T, a, b, *, max_steps, tol, reached_cap=None):
    """Newton's method on the entropic dual, batched, from plans of the Gibbs family (float64).

    ``T [P, m, n]``: plans ``diag(u) K diag(v)`` (e.g. after some Sinkhorn iterations); ``a [P, m]``,
    ``b [P, n]`` (zero = padding); torch tensors or NumPy arrays. The dual (in units of eps) is
    ``J(f, g) = <f, a> + <g, b> - sum_ij T_ij(f, g)`` with ``T_ij = u_i K_ij v_j e^(f_i + g_j)``;
    its gradient is the marginal violation ``(a - T 1, b - T^T 1)`` and minus its Hessian is
    ``H = [[diag(T 1), T], [T^T, diag(T^T 1)]]``, singular along ``(1, -1)``, which the rank-one term
    ``w w^T / (m + n)^2`` (``w`` = +1 on valid rows, -1 on valid columns) removes (with a tiny multiple
    of the identity for plans whose support is disconnected, e.g. underflowed at small eps). Each step:
    exact column scaling (a Sinkhorn half-step; afterwards the column marginals are exact, as in
    :func:`sinkhorn`), the stop test on the L1 row violation, then ``T <- T * exp(t (df_i + dg_j))`` with
    ``(df, dg) = H^-1 grad`` and ``t`` halved until ``J`` rises (Armijo), so every step is an ascent
    step. Converges quadratically where Sinkhorn crawls (plans close to a permutation).

    Returns ``(plan [P, m, n], steps [P], err [P])``; ``err`` NaN flags a numerical failure.
    ``reached_cap`` (a list, optional) gets an entry when some problem is still running at ``max_steps``
    (known on the host, no sync).
    """
    numpy = isinstance(T, np.ndarray)
    xp = np if numpy else torch
    P, m, n = T.shape
    plan, steps, err_out = T.copy() if numpy else T.clone(), xp.zeros(P, dtype=xp.int64), xp.zeros(P, dtype=T.dtype)
    if not numpy:
        steps, err_out = steps.to(T.device), err_out.to(T.device)
    idx = xp.arange(P) if numpy else torch.arange(P, device=T.device)
    rows, cols = xp.sign(a), xp.sign(b)  # 1 on valid entries, 0 on padding
    stalled = xp.zeros(P, dtype=bool) if numpy else torch.zeros(P, dtype=torch.bool, device=T.device)
    w = xp.concatenate([rows, -cols], 1)
    eye = xp.eye(m + n, dtype=T.dtype) if numpy else torch.eye(m + n, dtype=T.dtype, device=T.device)
    # the damping keeps H invertible where the plan's support is disconnected (underflowed entries)
    reg = w[:, :, None] * w[:, None, :] / (m + n) ** 2 + NEWTON_DAMPING * eye
    pad = xp.concatenate([1.0 - rows, 1.0 - cols], 1)  # unit diagonal on padding: zero step there
    for step in range(max_steps + 1):
        col = T.sum(-2)
        T = T * (b / (col + (1.0 - cols)))[:, None, :]  # exact column marginals (0 on padded columns)
        row = T.sum(-1)
        err = abs(row - a).sum(-1)
        stop = ~(err >= tol) | stalled | (step == max_steps)
        if step == max_steps and reached_cap is not None:
            reached_cap.append(step)
        if bool(stop.any()):
            plan[idx[stop]], steps[idx[stop]], err_out[idx[stop]] = T[stop], step, err[stop]
            if bool(stop.all()):
                break
            keep = ~stop
            T, a, b, row, reg, pad, cols, idx = (x[keep] for x in (T, a, b, row, reg, pad, cols, idx))
            stalled = stalled[keep]
        grad = xp.concatenate([a - row, xp.zeros_like(b)], 1)  # the column part is 0 after the scaling
        H = reg + (xp.concatenate([row, b], 1) + pad)[:, :, None] * eye
        H[:, :m, m:] = T
        H[:, m:, :m] = T.transpose(0, 2, 1) if numpy else T.transpose(1, 2)
        d = np.linalg.solve(H, grad[:, :, None])[..., 0] if numpy else torch.linalg.solve_ex(H, grad)[0]
        slope = (grad * d).sum(-1)  # > 0: ascent direction
        delta = d[:, :m, None] + d[:, None, m:]  # change of log T_ij per unit step
        t = xp.ones_like(slope)
        accepted = xp.zeros_like(slope) > 0
        T_new = T
        for _ in range(MAX_LINE_SEARCH):  # backtracking: accept where J(new) >= J + 1e-4 t slope
            with np.errstate(over="ignore", invalid="ignore"):
                step_ij = t[:, None, None] * delta
                trial = T * xp.exp(step_ij)  # (not T + T expm1: that rounds tiny entries to 0)
                # J(new) - J = t slope - sum T (e^x - 1 - x): no cancellation of sums near the optimum
                rise = t * slope - (T * (xp.expm1(step_ij) - step_ij)).sum((1, 2))
            ok = (rise >= 1e-4 * t * slope) & ~accepted
            T_new = xp.where(ok[:, None, None], trial, T_new)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            t = t * 0.5
        stalled = ~accepted  # no ascent left at this precision: stopped at the next test
        T = T_new
    return plan, steps, err_out


def _solve_subset(solve, sel, Ct, a, b, eps, padded, opts, out, base=None):
    """Run ``solve`` on the problems ``sel [k]`` (bool) of ``Ct [k, m, n]``; write into ``out``.

    ``out = (plan, n_iter, err)`` of the chunk; ``base [k]`` (optional) maps the rows of ``Ct`` to chunk rows.
    """
    if base is None and bool(sel.all()):
        solve(Ct, a, b, eps, padded, opts, out)
    elif bool(sel.any()):
        idx = torch.nonzero(sel)[:, 0]
        res = tuple(torch.empty((len(idx),) + o.shape[1:], dtype=o.dtype, device=o.device) for o in out)
        solve(Ct[idx], a[idx], b[idx], eps, padded, opts, res)
        pos = idx if base is None else base[idx]
        for o, r in zip(out, res):
            o[pos] = r


def _finish_by_newton(a, b, opts, out, eligible):
    """Newton's method (:func:`_newton`, float64; NumPy on CPU) on the ``eligible [P]`` problems of the
    chunk whose error in ``out = (plan, n_iter, err)`` is finite and not below ``tol``, for the
    iterations left of ``max_iter``.

    Updates ``out`` in place, except for problems where Newton made no progress (error not reduced, or
    NaN). Returns the masks ``[P]`` of the problems it solved and of those it could not. Problems it
    leaves unconverged at ``max_iter`` are counted into ``opts["capped"]`` (if present).
    """
    plan, n_iter, err = out
    slow = eligible & torch.isfinite(err) & (err >= opts["tol"])
    failed = torch.zeros_like(slow)
    idx = torch.nonzero(slow)[:, 0]
    if len(idx):
        args = [x[idx].double() for x in (plan, a, b)]
        if plan.device.type == "cpu":
            args = [x.numpy() for x in args]
        max_steps, reached_cap = opts["max_iter"] - NEWTON_AFTER, []
        T, steps, e = _newton(*args, max_steps=max_steps, tol=opts["tol"], reached_cap=reached_cap)
        T, steps, e = (torch.as_tensor(x, device=plan.device) for x in (T, steps, e))
        ok = e < err[idx]  # False for NaN
        if reached_cap and opts.get("capped") is not None:  # (problems without progress are redone)
            opts["capped"].append(int((ok & (steps >= max_steps) & (e >= opts["tol"])).sum()))
        plan[idx[ok]] = T[ok].to(plan.dtype)
        n_iter[idx[ok]] += steps[ok]
        err[idx[ok]] = e[ok].to(err.dtype)
        failed[idx[~ok]] = True
    return slow & ~failed, failed


def _sinkhorn_phase(C, a, b, eps, method, padded, opts, out, kernel_max_iter=None):
    """Sinkhorn iterations (stop rule "tol") on one chunk ``C [P, m, n]``; writes ``(plan, n_iter, err)``.

    Problems whose cost span over eps is within the kernel limit go to the kernel solver on the
    min-shifted cost. The others get the row/column-reduced cost, which can only shrink that range:
    kernel if it is now within the limit, log domain otherwise. With ``method="auto"``, kernel problems
    whose scalings became non-finite are redone in the log domain. ``kernel_max_iter``: a lower
    iteration cap for the kernel solver. Returns the log-domain mask ``[P]``.
    """
    # the lower cap is not final (Newton finishes those problems): not counted as reaching the cap
    kernel_opts = opts if kernel_max_iter is None else dict(opts, max_iter=kernel_max_iter, capped=None)
    kernel_limit = -1.0 if method == "log" else KERNEL_MAX_RANGE[C.dtype] * eps
    limit = {"auto": kernel_limit, "kernel": math.inf, "log": -1.0}[method]
    Cs, span = _shifted_cost(C, a, b, padded)
    direct = span <= kernel_limit  # False for NaN spans
    _solve_subset(_solve_kernel, direct, Cs, a, b, eps, padded, kernel_opts, out)
    log_domain = torch.zeros_like(direct)
    rest = torch.nonzero(~direct)[:, 0]
    if len(rest):
        Ct = _reduced_cost(C[rest], a[rest], b[rest], padded)
        use_log = Ct.amax((1, 2)) > limit
        _solve_subset(_solve_kernel, ~use_log, Ct, a[rest], b[rest], eps, padded, kernel_opts, out, base=rest)
        _solve_subset(_solve_log, use_log, Ct, a[rest], b[rest], eps, padded, opts, out, base=rest)
        log_domain[rest] = use_log
    if method == "auto":
        failed = torch.nonzero(~log_domain & ~torch.isfinite(out[2]))[:, 0]
        if len(failed):
            Ct = _reduced_cost(C[failed], a[failed], b[failed], padded)
            _solve_subset(_solve_log, torch.ones_like(failed, dtype=torch.bool), Ct, a[failed], b[failed], eps,
                          padded, opts, out, base=failed)
            log_domain[failed] = True
    return log_domain


def _solve_chunk(C, a, b, eps, method, padded, opts, out):
    """Stop rule "tol" on one chunk ``C [P, m, n]``; writes ``(plan, n_iter, err)`` into ``out``.

    :func:`_sinkhorn_phase`; with ``method="auto"``, small problems (``m + n <= NEWTON_MAX_DIM``) on
    the kernel path still unsolved after ``NEWTON_AFTER`` iterations are finished by Newton's method
    (log-domain problems, whose float32 plans may have underflowed, keep Sinkhorn), and those where
    Newton makes no progress are solved again by Sinkhorn iterations alone (full ``max_iter``).
    Returns the masks ``[P]`` of the problems solved in the log domain and of those finished by Newton.
    """
    P, m, n = C.shape
    if not (method == "auto" and m + n <= NEWTON_MAX_DIM and opts["max_iter"] > NEWTON_AFTER):
        return _sinkhorn_phase(C, a, b, eps, method, padded, opts, out), torch.zeros(P, dtype=torch.bool,
                                                                                      device=C.device)
    log_domain = _sinkhorn_phase(C, a, b, eps, method, padded, opts, out, kernel_max_iter=NEWTON_AFTER)
    by_newton, failed = _finish_by_newton(a, b, opts, out, eligible=~log_domain)
    idx = torch.nonzero(failed)[:, 0]
    if len(idx):
        sub = tuple(o[idx] for o in out)
        log_domain[idx] = _sinkhorn_phase(C[idx], a[idx], b[idx], eps, method, padded, opts, sub)
        for o, r in zip(out, sub):
            o[idx] = r
    return log_domain, by_newton


def _sinkhorn_tol(C, a, b, eps, method, padded, opts):
    """Stop rule "tol" on ``C [P, m, n]``, chunk by chunk. Returns ``plan [P, m, n]`` and a log dict of
    ``[P]`` tensors."""
    P, m, n = C.shape
    plan = torch.empty_like(C)
    n_iter = torch.empty(P, dtype=torch.long, device=C.device)
    err = torch.empty(P, dtype=C.dtype, device=C.device)
    log_domain = torch.empty(P, dtype=torch.bool, device=C.device)
    newton = torch.empty(P, dtype=torch.bool, device=C.device)
    for p in _chunk_slices(P, 2 * m * n * C.element_size(), C.device):
        log_domain[p], newton[p] = _solve_chunk(C[p], a[p], b[p], eps, method, padded, opts,
                                                (plan[p], n_iter[p], err[p]))
    return plan, {"n_iter": n_iter, "err": err, "log_domain": log_domain, "newton": newton,
                  "converged": err < opts["tol"]}


# --------------------------------------------------------------------------------------------------
# Sinkhorn iterations (stop rule "upstream")
# --------------------------------------------------------------------------------------------------
def _freeze(new, old, active, layout):
    """``new`` where the call is ``active [G]``, else ``old`` (per-problem vectors in ``layout``)."""
    G = len(active)
    if layout == "last":
        shape, mask = (new.shape[0], G, -1), active[None, :, None]
    else:
        shape, mask = (G, -1, new.shape[-1]), active[:, None, None]
    return torch.where(mask, new.view(shape), old.view(shape)).view(new.shape)


def _upstream_calls(C, a, b, eps, n_calls, out, *, padded, max_iter, tol, sync_every, capped=None):
    """The released ALIGN / PLOT / SOT-GLP Sinkhorn loop on ``C [P, m, n]``, vectorised over ``n_calls``.

    Per call (a contiguous group of ``P / n_calls`` problems): ``r = 1``, ``c = 1`` on the valid entries;
    repeat at most ``max_iter`` times ``r <- a / (K c)``, ``c <- b / (K^T r)`` with ``K = exp(-C / eps)``
    (no cost shift: the stop test depends on the scale of ``r``); stop after the first iteration where the
    mean of ``|r - r_prev|`` over the call's valid rows is below ``tol``. A stopped call is frozen while
    the others go on; ``sync_every`` iterations pass between host-side tests, where the stopped calls leave
    the iterated batch once at most ``COMPACT_KEEP_FRACTION`` of it still runs (as with the "tol" rule).
    Plan ``diag(r) K diag(c)``; a call whose plan has a NaN returns its kernel ``K`` (upstream's fallback).

    Writes the plan into ``out [P, m, n]``; returns ``n_iter``, ``fallback``, ``converged`` ``[n_calls]``.
    ``capped`` (a list, optional) receives the number of calls still running at ``max_iter`` (one host
    sync, on that path only).
    """
    P, m, n = C.shape
    G, size = n_calls, P // n_calls
    rows, cols = (a > 0)[:, :, None], (b > 0)[:, None, :]
    if padded:  # padding meets only exact zeros of r and c: any finite kernel there (here 1) gives the same
        C = C.masked_fill(~(rows & cols), 0.0)  # products, while inf or NaN would give 0 * inf = NaN
    layout = "last" if n <= UPSTREAM_LAST_MAX_N else _layout(m, n)
    axis = -1 if layout == "last" else 0
    K, A_c, A_r = _kernel(C, eps, layout)
    plan_operand = A_r
    a_, b_ = _vec(a, layout), _vec(b, layout)
    r, c = (a_ > 0).to(C.dtype), (b_ > 0).to(C.dtype)
    # padded rows / columns: 0 / (K c + 1) = 0 whatever K holds there (adding 0 elsewhere is exact)
    pad_r, pad_c = (1.0 - r, 1.0 - c) if padded else (None, None)
    count = _per_problem_sum(r.float(), layout).reshape(G, size).sum(-1).clamp_min(1)  # valid rows per call
    data = (A_c, A_r, a_, b_, pad_r, pad_c)
    r_out, c_out = r.clone(), c.clone()
    n_iter_out = torch.zeros(G, dtype=torch.long, device=C.device)
    converged = torch.ones(G, dtype=torch.bool, device=C.device)
    calls = torch.arange(G, device=C.device)  # the calls in the iterated batch (all, until compacted)
    active = torch.ones(G, dtype=torch.bool, device=C.device)
    n_iter = torch.zeros(G, dtype=torch.long, device=C.device)
    single = G == 1 and sync_every == 1  # one call tested every iteration: no freezing, just stop
    threshold = tol * float(count[0]) if single else None  # sum |r - r_prev| < tol * (valid rows)

    def problems_of(idx):
        return (idx[:, None] * size + torch.arange(size, device=C.device)).reshape(-1)

    def write_back():
        dest = problems_of(calls)
        _put(r_out, dest, r, axis)
        _put(c_out, dest, c, axis)
        n_iter_out[calls], converged[calls] = n_iter, ~active

    it = 0
    for it in range(1, max_iter + 1):
        A_c, A_r, a_, b_, pad_r, pad_c = data
        Kc = _apply(A_c, c, layout)
        r_new = a_ / (Kc if pad_r is None else Kc + pad_r)
        Kr = _apply(A_r, r_new, layout)
        c_new = b_ / (Kr if pad_c is None else Kr + pad_c)
        if single:
            done = float((r_new - r).float().abs_().sum()) < threshold  # NaN never stops, as upstream
            r, c = r_new, c_new
            if done:
                active[0] = False
                break
            continue
        change = _per_problem_sum((r_new - r).abs().float(), layout).reshape(len(calls), size).sum(-1) / count
        r, c = _freeze(r_new, r, active, layout), _freeze(c_new, c, active, layout)
        n_iter += active
        active = active & ~(change < tol)
        if it % sync_every == 0:
            n_active = int(active.sum())
            if not n_active:
                break
            if n_active <= COMPACT_KEEP_FRACTION * len(calls):  # the stopped calls leave the batch
                write_back()
                keep = _nonzero(active)
                idx = problems_of(keep)
                r, c = _take(r, idx, axis), _take(c, idx, axis)
                data = tuple(None if d is None else _take(d, idx, axis) for d in data)
                calls, count, n_iter, active = calls[keep], count[keep], n_iter[keep], active[keep]
    else:
        if capped is not None:
            capped.append(int(active.sum()))
    if single:
        n_iter[0] = it
    write_back()
    plan = _gibbs_plan(K, plan_operand, r_out, c_out, layout, out)
    fallback = torch.isnan(plan.reshape(G, -1).sum(-1))  # a sum of entries >= 0 is NaN iff one of them is
    if bool(fallback.any()):
        kernel = C.div(-eps).exp_()
        if padded:
            kernel.masked_fill_(~rows, 0.0).masked_fill_(~cols, 0.0)
        plan.copy_(torch.where(fallback.repeat_interleave(size)[:, None, None], kernel, plan))
    return n_iter_out, fallback, converged


def _sinkhorn_upstream(C, a, b, eps, n_calls, *, padded, max_iter, tol, check_every, capped=None):
    """Stop rule "upstream" on ``C [P, m, n]``, in chunks of whole calls on CPU (cache-sized).

    On CPU the stop test is read every iteration (no device to sync with); elsewhere every
    ``check_every`` iterations. Returns ``plan [P, m, n]`` and a log dict of ``[P]`` tensors.
    """
    P, m, n = C.shape
    size = P // n_calls
    sync_every = 1 if C.device.type == "cpu" else check_every
    plan = torch.empty_like(C)
    info = {k: torch.empty(n_calls, dtype=dt, device=C.device)
            for k, dt in (("n_iter", torch.long), ("fallback", torch.bool), ("converged", torch.bool))}
    for g in _chunk_slices(n_calls, 2 * size * m * n * C.element_size(), C.device):
        p = slice(g.start * size, g.stop * size)
        res = _upstream_calls(C[p], a[p], b[p], eps, g.stop - g.start, plan[p], padded=padded,
                              max_iter=max_iter, tol=tol, sync_every=sync_every, capped=capped)
        for k, v in zip(("n_iter", "fallback", "converged"), res):
            info[k][g] = v
    return plan, {k: v.repeat_interleave(size) for k, v in info.items()}


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------
def sinkhorn(cost, a=None, b=None, *, eps, max_iter=None, tol=None, method="auto", stop_rule="tol",
             call_dims=0, check_every=10, log=False, cap_hint=None, compute_dtype=None):
    r"""Entropic OT plans of a batch of problems (POT's ``ot.sinkhorn``, batched).

    Solves, for every problem of the batch,
    :math:`\min_{T \ge 0,\ T 1 = a,\ T^\top 1 = b} \langle T, C\rangle + \varepsilon \sum T \log T`.

    Parameters
    ----------
    cost : tensor ``[..., m, n]``
        Cost matrices; any leading dimensions are batch dimensions. Any float dtype (half types are
        computed in float32). No gradient flows into the plan.
    a, b : tensor ``[..., m]`` / ``[..., n]`` (or ``[m]`` / ``[n]``, broadcast), optional
        Marginals; uniform when None. Zero entries are padding (zero plan rows / columns).
    eps : float
        Entropic regularisation (> 0), in the units of ``cost``.
    max_iter : int, optional
        Iteration cap; default 1000 (``"tol"``) or 100 (``"upstream"``).
    tol : float, optional
        ``"tol"``: L1 violation of the row marginal (column marginals are exact after each iteration) at
        which a problem stops, default 1e-6. ``"upstream"``: threshold on the mean ``|r - r_prev|``,
        default 1e-2.
    method : ``"auto"`` | ``"kernel"`` | ``"log"``
        ``"tol"`` rule only. ``"kernel"``: multiplicative updates on ``exp(-C~/eps)`` (``bmm``-style
        batched products), with ``C~`` the cost minus its minimum when its span ``max - min`` over eps is
        at most ``KERNEL_MAX_RANGE[dtype]`` (40 in float32, 500 in float64), else the cost minus its row
        and column minima (absorbed dual potentials: the plan is unchanged, the kernel stays in range).
        ``"log"``: log-domain updates (logsumexp). ``"auto"`` (default) chooses per problem: kernel
        while the span of ``C~`` over eps is within that limit, log domain otherwise and for any kernel
        problem whose scalings became non-finite; and small problems (``m + n <= NEWTON_MAX_DIM``, 32)
        not converged after ``NEWTON_AFTER`` (50) iterations are finished by Newton's method on the
        dual (float64, line search; same plan, quadratic instead of linear convergence: plans close to
        a permutation, such as Prompt-OT's 4 x 4 at eps 0.1, take Sinkhorn thousands of iterations and
        Newton a handful of steps, each counted in ``n_iter``). Tiny batches on CPU (at most
        ``SMALL_NUMPY_NUMEL`` cost entries) iterate on NumPy float64 arrays.
    stop_rule : ``"tol"`` | ``"upstream"``
        ``"tol"``: per-problem convergence, checked every ``check_every`` iterations (the only host syncs).
        ``"upstream"``: fidelity switch reproducing the Sinkhorn routine of ALIGN (``mmp.py``), PLOT and
        SOT-GLP: multiplicative updates on the unshifted kernel ``exp(-C/eps)`` from ``r = c = 1``
        (``r <- a / (K c)``, then ``c <- b / (K^T r)``), stop after the first iteration where the *mean
        over the call* of ``|r - r_prev|`` is below ``tol`` (1e-2), at most ``max_iter`` (100) iterations,
        plan ``diag(r) K diag(c)``; a call whose plan contains NaN returns ``K`` (upstream fallback;
        flagged in the log). Computed in float32/float64 (upstream runs fp16 under amp, so iteration
        counts can differ there).
    call_dims : int
        ``"upstream"`` only: the first ``call_dims`` batch dimensions index separate upstream calls, each
        with its own stop test; the remaining batch dimensions and the rows are pooled in the mean.
        0 (default): the whole batch is one call (PLOT, SOT-GLP, ALIGN prompt level). ALIGN's token level
        on ``cost [B, C, M*N, P, L]`` is ``call_dims=2`` (one call per image and class).
    check_every : int
        Iterations between convergence checks (host syncs on GPU). Newton steps (see ``method``) are
        tested every step: about two syncs per step, a handful of steps.
    log : bool
        Also return a dict of per-problem tensors of shape ``[...]``: ``n_iter``, ``converged`` and, for
        ``"tol"``, ``err`` (final error), ``log_domain`` and ``newton`` (finished by Newton's method);
        for ``"upstream"``, ``fallback``.
    compute_dtype : torch dtype, optional
        ``"upstream"`` only: iterate in this dtype instead of float32 / float64, e.g. ``torch.float16`` to
        reproduce upstream code that runs Sinkhorn on fp16 similarities (the stop test's mean is taken in
        float32). The plan is returned in this dtype.
    cap_hint : str, optional
        Names the settings behind ``eps`` / ``max_iter`` in the warning below (e.g. the config keys
        ``TRAINER.PROMPTOT.OT_EPS / TRAINER.PROMPTOT.OT_ITERS``); default: these arguments.

    Warns
    -----
    SinkhornCapWarning
        When a problem (``"upstream"``: a call) reaches ``max_iter`` unconverged: its plan is an
        approximation. Issued once per call site (the first caller outside this module; an explicit
        registry, independent of the warning filters), with a message that depends only on the
        arguments, so Python's own once-per-location filtering also applies. Detecting it costs no host
        sync on converged paths (one count on the capped path).

    Returns
    -------
    plan : tensor ``[..., m, n]`` (float32, or float64 for float64 costs), or ``(plan, log)``.
    """
    if not eps > 0:
        raise ValueError("eps must be > 0")
    if method not in ("auto", "kernel", "log"):
        raise ValueError(f"unknown method {method!r}")
    if check_every < 1:
        raise ValueError("check_every must be >= 1")
    if compute_dtype is not None and stop_rule != "upstream":
        raise ValueError('compute_dtype is supported with stop_rule="upstream" only')
    C, a_, b_, batch_shape, padded = _prepare(cost, a, b, compute_dtype)
    if not 0 <= call_dims <= len(batch_shape):
        raise ValueError(f"call_dims={call_dims} outside 0..{len(batch_shape)} (batch dims of the cost)")
    if len(C) == 0:
        return (C.reshape(cost.shape), {}) if log else C.reshape(cost.shape)
    capped = []  # counts of problems stopped unconverged at the cap
    if stop_rule == "tol":
        max_iter, tol = 1000 if max_iter is None else max_iter, 1e-6 if tol is None else tol
        opts = dict(max_iter=max_iter, tol=tol, check_every=check_every, capped=capped)
        with torch.no_grad():
            plan, info = _sinkhorn_tol(C, a_, b_, eps, method, padded, opts)
    elif stop_rule == "upstream":
        if method == "log":
            raise ValueError('stop_rule="upstream" uses multiplicative updates only')
        max_iter, tol = 100 if max_iter is None else max_iter, 1e-2 if tol is None else tol
        n_calls = math.prod(batch_shape[:call_dims])
        with torch.no_grad():
            plan, info = _sinkhorn_upstream(C, a_, b_, eps, n_calls, padded=padded, max_iter=max_iter, tol=tol,
                                            check_every=check_every, capped=capped)
    else:
        raise ValueError(f"unknown stop_rule {stop_rule!r}")
    if sum(capped):
        _warn_capped(stop_rule, eps, max_iter, tol, cap_hint)
    plan = plan.reshape(cost.shape)
    if not log:
        return plan
    return plan, {k: v.reshape(batch_shape) for k, v in info.items()}


class SinkhornCapWarning(UserWarning):
    """A Sinkhorn problem reached its iteration cap unconverged (its plan is approximate)."""


_CAP_WARNED_SITES = set()  # (file, line) of the call sites already warned
_THIS_FILE = os.path.normcase(os.path.abspath(__file__))


def _caller_outside_module():
    """``(stacklevel, (file, line))`` of the first frame outside this module, as seen from the caller
    of this function's caller (stacklevel counts for ``warnings.warn`` called there)."""
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.normcase(os.path.abspath(frame.f_code.co_filename)) == _THIS_FILE:
        frame, level = frame.f_back, level + 1
    return level, (None if frame is None else (frame.f_code.co_filename, frame.f_lineno))


def _warn_capped(stop_rule, eps, max_iter, tol, hint):
    """Issue :class:`SinkhornCapWarning` for the current call site, unless already done there."""
    level, site = _caller_outside_module()
    if site in _CAP_WARNED_SITES:
        return
    _CAP_WARNED_SITES.add(site)
    what = "calls" if stop_rule == "upstream" else "problems"
    warnings.warn(
        f"sinkhorn (stop_rule={stop_rule!r}): {what} reached max_iter={max_iter} without meeting tol={tol:g} "
        f"at eps={eps:g}; their plans are approximate. Raise the iteration cap or eps "
        f"({hint or 'the max_iter / eps arguments'}). Shown once per call site.",
        SinkhornCapWarning, stacklevel=level)


@functools.lru_cache(maxsize=None)
def _permutation_plans(n, dtype, device):
    """All ``n!`` permutation plans ``[n!, n, n]`` (entries 1/n) and their flat 0/1 form ``[n*n, n!]``.

    torch tensors on ``device``, or NumPy arrays when ``device`` is None.
    """
    perms = torch.tensor(list(itertools.permutations(range(n))))
    plans = torch.zeros(len(perms), n, n, dtype=dtype)
    plans[torch.arange(len(perms))[:, None], torch.arange(n), perms] = 1.0
    out = plans / n, plans.reshape(len(perms), n * n).T.contiguous()
    return tuple(x.numpy() for x in out) if device is None else tuple(x.to(device) for x in out)


def _exact_pot(C, a, b):
    """Exact plans of ``C [P, m, n]`` with POT's network simplex (``ot.emd``), problem by problem on CPU."""
    import ot

    plan = torch.zeros(C.shape, dtype=torch.float64)
    C64, a64, b64 = (x.double().cpu() for x in (C, a, b))
    for p in range(len(C64)):
        rows, cols = torch.nonzero(a64[p] > 0)[:, 0], torch.nonzero(b64[p] > 0)[:, 0]
        sub = C64[p][rows][:, cols].numpy()
        plan[p, rows[:, None], cols] = torch.from_numpy(ot.emd(a64[p, rows].numpy(), b64[p, cols].numpy(), sub))
    return plan.to(device=C.device, dtype=C.dtype)


def exact_ot(cost, a=None, b=None):
    r"""Exact (unregularised) OT plans of a batch of problems (POT's ``ot.emd``, batched).

    Parameters
    ----------
    cost : tensor ``[..., m, n]``
        Cost matrices (no gradient flows into the plan).
    a, b : tensor ``[..., m]`` / ``[..., n]``, optional
        Marginals; uniform when None. Zero entries are padding.

    Returns
    -------
    plan : tensor ``[..., m, n]`` (float32, or float64 for float64 costs) on ``cost.device``.

    With uniform marginals (``a = b = None``) and ``m = n <= MAX_PERMUTATION_SIZE`` (6) the optimum is a
    permutation matrix / n (a vertex of the Birkhoff polytope); it is found where the cost lives (on
    device, or with NumPy on CPU) by scoring all ``n!`` permutations with one matmul (Prompt-OT's batch
    of 4 is a 4 x 4 assignment: 24 permutations, no host sync). With ties the chosen vertex may differ
    from POT's (same cost). Otherwise each problem goes to POT's ``ot.emd`` on CPU, in float64.
    """
    m, n = cost.shape[-2:]
    if a is None and b is None and m == n and 1 <= n <= MAX_PERMUTATION_SIZE:
        return _permutation_search(cost)
    C, a_, b_, _, _ = _prepare(cost, a, b)
    return _exact_pot(C, a_, b_).reshape(cost.shape)


def _permutation_search(cost):
    """Optimal permutation plans of uniform square ``cost [..., n, n]`` (``n <= MAX_PERMUTATION_SIZE``)
    by scoring all ``n!`` permutations with one matmul, where the cost lives (NumPy on CPU)."""
    n = cost.shape[-1]
    dtype = _compute_dtype(cost.dtype)
    x = cost.detach()
    x = x if x.dtype == dtype else x.to(dtype)
    if x.is_cpu:  # NumPy: lower per-call overhead than torch for Prompt-OT's one 4 x 4 plan per step
        plans, perms = _permutation_plans(n, dtype, None)
        best = np.dot(x.numpy().reshape(-1, n * n), perms).argmin(-1)
        return torch.from_numpy(plans.take(best, 0).reshape(cost.shape))
    plans, perms = _permutation_plans(n, dtype, cost.device)
    return plans[(x.reshape(-1, n * n) @ perms).argmin(-1)].reshape(cost.shape)


def hungarian(cost):
    r"""Exact OT plans with uniform marginals of square costs, as assignments (batched).

    With ``a = b = 1/n`` an optimal plan is a permutation matrix / n (a vertex of the Birkhoff polytope,
    Birkhoff-von Neumann), so exact OT is the linear assignment problem. Each problem is solved by
    SciPy's ``scipy.optimize.linear_sum_assignment`` (the Hungarian method in its shortest augmenting
    path form, modified Jonker-Volgenant, O(n^3)). That is a CPU routine: costs on an accelerator are
    copied to the host (one synchronising copy per call) and the plans copied back. For
    ``n <= MAX_PERMUTATION_SIZE`` (6) all ``n!`` permutations are scored with one matmul instead, where
    the cost lives (on device: no host sync; Prompt-OT's batch of 4 is 24 permutations). Both give the
    optimal value; with ties the chosen permutation may differ.

    Parameters
    ----------
    cost : tensor ``[..., n, n]`` (no gradient flows into the plan)

    Returns
    -------
    plan : tensor ``[..., n, n]`` with entries 0 and 1/n (float32, or float64 for float64 costs) on
    ``cost.device``.
    """
    if cost.dim() < 2 or cost.shape[-1] != cost.shape[-2] or cost.shape[-1] == 0:
        raise ValueError(f"hungarian needs square costs [..., n, n] with n > 0, got {tuple(cost.shape)}")
    n = cost.shape[-1]
    if n <= MAX_PERMUTATION_SIZE:
        return _permutation_search(cost)
    from scipy.optimize import linear_sum_assignment

    dtype = _compute_dtype(cost.dtype)
    flat = cost.detach().to(device="cpu", dtype=torch.float64).reshape(-1, n, n).numpy()
    plan = np.zeros(flat.shape)
    for p, c in enumerate(flat):
        rows, cols = linear_sum_assignment(c)
        plan[p, rows, cols] = 1.0 / n
    return torch.from_numpy(plan).to(device=cost.device, dtype=dtype).reshape(cost.shape)


def ot_value(cost, a=None, b=None, *, method="exact", return_plan=False, **sinkhorn_kwargs):
    r"""OT value ``<T*, cost>`` per problem, with the envelope gradient (through ``cost`` only).

    ``T* = exact_ot(cost.detach(), a, b)`` (``method="exact"``), ``hungarian(cost.detach())``
    (``method="hungarian"``: uniform marginals, square costs) or
    ``sinkhorn(cost.detach(), a, b, **sinkhorn_kwargs)`` (``method="sinkhorn"``) is a constant, so
    ``d value / d cost = T*`` -- the gradient of the exact OT value, and of the entropic OT objective
    ``<T, C> + eps sum T log T`` at its optimum (envelope theorem). This is what Prompt-OT, ALIGN and
    SOT-GLP back-propagate.

    Parameters
    ----------
    cost : tensor ``[..., m, n]`` (may require grad)
    a, b : marginals as in :func:`sinkhorn` (no gradient)
    method : ``"exact"`` | ``"hungarian"`` | ``"sinkhorn"``

    Returns
    -------
    value : tensor ``[...]`` (dtype of the plan: float32, or float64 for float64 costs), and the plan
    ``[..., m, n]`` if ``return_plan``.
    """
    if method in ("exact", "hungarian") and sinkhorn_kwargs:
        raise TypeError(f"unexpected arguments for {method} OT: {sorted(sinkhorn_kwargs)}")
    if method == "exact":
        plan = exact_ot(cost.detach(), a, b)
    elif method == "hungarian":
        if a is not None or b is not None:
            raise ValueError("method='hungarian' solves uniform marginals only (a = b = None)")
        plan = hungarian(cost.detach())
    elif method == "sinkhorn":
        plan = sinkhorn(cost.detach(), a, b, **sinkhorn_kwargs)
    else:
        raise ValueError(f"unknown method {method!r}")
    value = (plan * cost.to(plan.dtype)).sum((-2, -1))
    return (value, plan) if return_plan else value


@torch.no_grad()
def unbalanced_sinkhorn(cost: torch.Tensor, eps: float, reg_m: float, max_iter: int = 100, thresh: float = 0.01):
    """KL-relaxed (unbalanced) entropic OT as SOT-GLP's ``gl_sot_loss.py`` leaves it commented out (its
    ``TRAINER.SOTGLP.OT_UNBALANCED`` switch), uniform marginals: the upstream loop with both
    scalings raised to ``reg_m / (reg_m + eps)`` (KL-relaxed marginals), ``r <- (a / K c)^f``,
    ``c <- (b / K^T r)^f``, same start, stop test (mean |r - r_prev| over all problems) and cap.
    ``cost [..., k, N]`` -> plan ``[..., k, N]`` (float32)."""
    k, n = cost.shape[-2:]
    K = torch.exp(-cost.reshape(-1, k, n) / eps)
    f = reg_m / (reg_m + eps)
    r, c = K.new_ones(K.shape[0], k), K.new_ones(K.shape[0], n)
    for _ in range(max_iter):
        r_prev = r
        r = ((1.0 / k) / (K @ c.unsqueeze(-1)).squeeze(-1)) ** f
        c = ((1.0 / n) / (K.transpose(1, 2) @ r.unsqueeze(-1)).squeeze(-1)) ** f
        if float((r - r_prev).abs().mean()) < thresh:
            break
    return (r.unsqueeze(-1) * K * c.unsqueeze(-2)).reshape(cost.shape)
