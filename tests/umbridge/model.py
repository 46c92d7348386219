"""A model of "your own" behind the official UM-Bridge Python server, for dino's client tests.

    q_k(m) = s_k + 0.05 s_k²,   s = A m,   A_kj = sin(1 + 0.37 k + 0.011 (k + 1) j) / sqrt(d_M)

with its Jacobian J = diag(1 + 0.1 s) A (Gradient: Jᵀ sens, ApplyJacobian: J vec), in pure Python.

    python3 model.py PORT D_M [--evaluate-only] [--exit-after N]

--exit-after N ends the process after N Evaluate requests (a server that dies mid-run).
"""

import math
import os
import sys

import umbridge

D_Q = 8


class Model(umbridge.Model):
    def __init__(self, d_m, derivatives, exit_after):
        super().__init__("forward")
        self.d_m = d_m
        self.derivatives = derivatives
        self.exit_after = exit_after
        self.evaluations = 0
        scale = 1.0 / math.sqrt(d_m)
        self.a = [
            [math.sin(1 + 0.37 * k + 0.011 * (k + 1) * j) * scale for j in range(d_m)]
            for k in range(D_Q)
        ]

    def get_input_sizes(self, config):
        return [self.d_m]

    def get_output_sizes(self, config):
        return [D_Q]

    def s(self, m):
        return [sum(a * x for a, x in zip(row, m)) for row in self.a]

    def __call__(self, parameters, config):
        self.evaluations += 1
        if self.exit_after is not None and self.evaluations > self.exit_after:
            os._exit(1)
        return [[s + 0.05 * s * s for s in self.s(parameters[0])]]

    def gradient(self, out_wrt, in_wrt, parameters, sens, config):
        w = [(1 + 0.1 * s) * c for s, c in zip(self.s(parameters[0]), sens)]
        return [sum(w[k] * self.a[k][j] for k in range(D_Q)) for j in range(self.d_m)]

    def apply_jacobian(self, out_wrt, in_wrt, parameters, vec, config):
        av = self.s(vec)
        return [(1 + 0.1 * s) * x for s, x in zip(self.s(parameters[0]), av)]

    def supports_evaluate(self):
        return True

    def supports_gradient(self):
        return self.derivatives

    def supports_apply_jacobian(self):
        return self.derivatives


if __name__ == "__main__":
    port, d_m = int(sys.argv[1]), int(sys.argv[2])
    exit_after = None
    if "--exit-after" in sys.argv:
        exit_after = int(sys.argv[sys.argv.index("--exit-after") + 1])
    model = Model(d_m, "--evaluate-only" not in sys.argv, exit_after)
    umbridge.serve_models([model], port, max_workers=4)
