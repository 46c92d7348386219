"""Drives `dino serve` with the official UM-Bridge Python client (pip package `umbridge`).

usage: client.py URL OUT.json
Writes, for m_i = 0.3 sin(i), s_k = cos(k), v_i = sin(2 i): F(m), (dF)ᵀ s, dF v, d²(s·F) v of
`forward`, log π(m) and its gradient of `posterior`, whether 8 concurrent clients got the serial
answer, and the status and error type of every bad request.
"""
import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor

import requests
import umbridge

url, out = sys.argv[1], sys.argv[2]
forward = umbridge.HTTPModel(url, "forward")
n, k = forward.get_input_sizes()[0], forward.get_output_sizes()[0]
m = [0.3 * math.sin(i) for i in range(n)]
s = [math.cos(j) for j in range(k)]
v = [math.sin(2 * i) for i in range(n)]
result = {
    "input_size": n,
    "output_size": k,
    "support": [forward.supports_evaluate(), forward.supports_gradient(),
                forward.supports_apply_jacobian(), forward.supports_apply_hessian()],
    "evaluate": forward([m])[0],
    "gradient": forward.gradient(0, 0, [m], s),
    "apply_jacobian": forward.apply_jacobian(0, 0, [m], v),
    "apply_hessian": forward.apply_hessian(0, 0, 0, [m], s, v),
}
posterior = umbridge.HTTPModel(url, "posterior")
result["log_posterior"] = posterior([m])[0][0]
result["log_posterior_gradient"] = posterior.gradient(0, 0, [m], [1.0])


def shifted(c):
    return forward([[x + 0.01 * c for x in m]])[0]


serial = [shifted(c) for c in range(8)]
with ThreadPoolExecutor(8) as pool:
    concurrent = list(pool.map(shifted, range(8)))
result["concurrent_equal"] = concurrent == serial

bad = {
    "wrong_name_no_input": ("/Evaluate", {"name": "nope"}),
    "no_body": ("/Evaluate", None),
    "garbage": ("/Evaluate", "}{ not json"),
    "short_input": ("/Evaluate", {"name": "forward", "input": [[1.0, 2.0]]}),
    "not_list_of_lists": ("/Evaluate", {"name": "forward", "input": [1.0] * n}),
    "two_inputs": ("/Evaluate", {"name": "forward", "input": [m, m]}),
    "bad_out_wrt": ("/Gradient", {"name": "forward", "input": [m], "outWrt": 1, "inWrt": 0, "sens": s}),
    "short_sens": ("/Gradient", {"name": "forward", "input": [m], "outWrt": 0, "inWrt": 0, "sens": [1.0]}),
    "short_vec": ("/ApplyJacobian", {"name": "forward", "input": [m], "outWrt": 0, "inWrt": 0, "vec": [1.0]}),
    "model_info_wrong_name": ("/ModelInfo", {"name": "nope"}),
    "input_sizes_wrong_name": ("/InputSizes", {"name": "nope", "config": {}}),
}
result["errors"] = {}
for key, (path, body) in bad.items():
    if body is None:
        r = requests.post(url + path)
    elif isinstance(body, str):
        r = requests.post(url + path, data=body)
    else:
        r = requests.post(url + path, json=body)
    result["errors"][key] = [r.status_code, r.json()["error"]["type"]]
info = requests.get(url + "/Info").json()
result["info"] = info
with open(out, "w") as f:
    json.dump(result, f)
