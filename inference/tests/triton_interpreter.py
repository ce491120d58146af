"""Two gaps in the Triton 3.6 interpreter, fixed in the test process that runs the tests marked
``triton_interpreter`` (conftest.py applies this; it changes how the interpreter runs, never a
compiled kernel)."""

from __future__ import annotations

import numpy as np
import triton.language as tl
import triton.runtime.interpreter as interpreter

_patched = False


def patch_triton_interpreter() -> None:
    """Idempotent. The gaps:
    - it turns a scalar loop bound into an int via int(array of shape (1,)), which numpy 2.4
      rejects;
    - its dot multiplies bfloat16 operands as their raw uint16 storage. Upcasting them to float32
      is exact and is what the tensor cores do (bf16 products, fp32 accumulation)."""
    global _patched
    if _patched:
        return
    _patched = True
    original_patch = interpreter._patch_lang_tensor

    def patch_tensor(tensor, scope):  # type: ignore[no-untyped-def]
        original_patch(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    original_dot = interpreter.InterpreterBuilder.create_dot

    def dot(self, a, b, d, input_precision, max_num_imprecise_acc):  # type: ignore[no-untyped-def]
        def upcast(h):  # type: ignore[no-untyped-def]
            if h.dtype.scalar != tl.bfloat16:
                return h
            data = interpreter._convert_float(h.data, tl.bfloat16, tl.float32, None).view(
                np.float32
            )
            return interpreter.TensorHandle(data, tl.float32)

        return original_dot(self, upcast(a), upcast(b), d, input_precision, max_num_imprecise_acc)

    interpreter._patch_lang_tensor = patch_tensor
    interpreter.InterpreterBuilder.create_dot = dot
