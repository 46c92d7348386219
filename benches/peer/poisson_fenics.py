# Peer timing: FEniCS (legacy dolfin) on the same Poisson problem, P1, direct LU (as hIPPYlib's
# incremental solvers). forward = assemble + factorize + solve; Jacobian = 50 adjoint solves on the
# kept factorization + assembly of each row (∂r/∂m)^T p, as hIPPYlib/hippyflow compute it.
import time, sys, numpy as np
import dolfin as dl
dl.set_log_level(dl.LogLevel.ERROR)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
mesh = dl.UnitSquareMesh(n, n)
V = dl.FunctionSpace(mesh, "Lagrange", 1)
m = dl.interpolate(dl.Expression("0.5*sin(3*x[0])*cos(2*x[1])", degree=2), V)
u, p, mt = dl.TrialFunction(V), dl.TestFunction(V), dl.TestFunction(V)
bcs = [dl.DirichletBC(V, dl.Constant(0.0), "near(x[1], 0)"), dl.DirichletBC(V, dl.Constant(1.0), "near(x[1], 1)")]
bc0 = [dl.DirichletBC(V, dl.Constant(0.0), "near(x[1], 0) || near(x[1], 1)")]
xs, ys = np.linspace(0.1, 0.9, 10), np.linspace(0.1, 0.5, 5)
pts = [(x, y) for y in ys for x in xs]
def forward():
    a = dl.exp(m) * dl.inner(dl.grad(u), dl.grad(p)) * dl.dx
    L = dl.Constant(0.0) * p * dl.dx
    A, b = dl.assemble_system(a, L, bcs)
    solver = dl.LUSolver(A)
    uh = dl.Function(V)
    solver.solve(uh.vector(), b)
    q = np.array([uh(pt) for pt in pts])
    return uh, solver, A
def jacobian(uh, solver, A):
    # B^T e_k as point sources, adjoint solve, row = -(dr/dm)^T p
    rows = []
    ph = dl.Function(V)
    for pt in pts:
        rhs = dl.assemble(dl.Constant(0.0) * p * dl.dx)
        dl.PointSource(V, dl.Point(*pt), 1.0).apply(rhs)
        for bc in bc0: bc.apply(rhs)
        solver.solve(ph.vector(), rhs)
        rows.append(-dl.assemble(mt * dl.exp(m) * dl.inner(dl.grad(uh), dl.grad(ph)) * dl.dx).get_local())
    return np.array(rows)
forward(); 
reps = 10
t = time.perf_counter()
for _ in range(reps): uh, solver, A = forward()
tf = (time.perf_counter() - t) / reps
t = time.perf_counter()
for _ in range(3): J = jacobian(uh, solver, A)
tj = (time.perf_counter() - t) / 3
print(f"fenics n={n}: forward {tf*1e3:.1f} ms, full Jacobian {tj*1e3:.1f} ms, J shape {J.shape}")
