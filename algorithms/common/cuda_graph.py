"""A training step captured once as a CUDA graph and replayed for every minibatch.

An update of a small network on a small batch is launch-bound on a GPU: ~100 kernel launches
take longer than the arithmetic. Captured once, the whole step (forward, loss, backward, clip,
optimizer step) replays as one launch. The DQN learner uses it (`dqn_learner.py`); it knows
nothing of DQN: it takes the step and the tensors the step changes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

GRAPH_WARMUP_STEPS = 3  # eager steps on a side stream before capture (torch's recipe)


def _start_autograd_cuda_worker() -> None:
    """Run one throwaway backward on the GPU (unrelated tensors), once per process.

    On an H200 with torch 2.11, the first CUDA graph capture of a process failed ("operation
    would make the legacy stream depend on a capturing blocking stream") when the first backward
    of the process was part of its warm-up: the parameters' gradient-accumulation nodes were
    tied to the default stream, which a capture cannot wait on. Captures in processes that had
    run a backward before worked, as did torch's recipe in bench/gpu_dqn.py after eager steps.
    """
    if getattr(_start_autograd_cuda_worker, "done", False):
        return
    probe = torch.ones(1, device="cuda", requires_grad=True)
    (probe * 2.0).sum().backward()
    torch.cuda.synchronize()
    _start_autograd_cuda_worker.done = True  # type: ignore[attr-defined]


class CapturedStep:
    """A training step captured once as a CUDA graph; `replay()` runs it again.

    torch's recipe: a few eager steps on a side stream (they allocate the optimizer's state and
    let cuDNN pick its kernels), then the capture, here on that same stream: a parameter's
    gradient-accumulation node remembers the stream it was made on, and a backward captured on
    another stream would have to sync with it. Where torch offers it, stale streams of such
    nodes are also redirected to the capture (`set_override_stale_capture_stream`). The warm-up
    steps are undone, so the first replay starts from exactly the weights and optimizer state
    there were before.

    Args:
        step: The step; it reads only tensors that stay in place (the static batch).
        state: Every tensor the step changes: parameters and optimizer state.
    """

    def __init__(self, step: Callable[[], None], state: Callable[[], list[torch.Tensor]]) -> None:
        _start_autograd_cuda_worker()
        before = [tensor.clone() for tensor in state()]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_STEPS):
                step()
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():  # undo: tensors that did not exist yet restart from zero
            for i, tensor in enumerate(state()):
                tensor.copy_(before[i]) if i < len(before) else tensor.zero_()
        override = getattr(torch.autograd.graph, "set_override_stale_capture_stream", None)
        self.graph = torch.cuda.CUDAGraph()
        try:
            if override is not None:
                override(True)
            with torch.cuda.graph(self.graph, stream=side):
                step()
        finally:
            if override is not None:
                override(False)

    def replay(self) -> None:
        self.graph.replay()
