"""Regenerates the Gmsh meshes shipped in problems/meshes/ (gmsh 4.15, `pip install gmsh`).

    python3 problems/meshes/make_meshes.py

square.msh       unit square, unstructured, h = 1/24, physical lines left/right/bottom/top
square_hole.msh  unit square with a disc of radius 0.15 at (0.5, 0.7) cut out,
                 physical lines left/right/bottom/top/hole (MSH 4.1 ASCII)
square_v22_bin.msh  the same square as square.msh, written as MSH 2.2 binary (reader test)
square_v41_bin.msh  the same square, MSH 4.1 binary (reader test)
square_order2.msh   a coarse square (h = 1/2) of 6-node triangles, which dino refuses (test)
"""
import os
import gmsh

HERE = os.path.dirname(os.path.abspath(__file__))


def square(h, hole=None):
    occ = gmsh.model.occ
    rect = occ.addRectangle(0, 0, 0, 1, 1)
    if hole is not None:
        (cx, cy, r) = hole
        disc = occ.addDisk(cx, cy, 0, r, r)
        occ.cut([(2, rect)], [(2, disc)])
    occ.synchronize()
    gmsh.option.setNumber("Mesh.MeshSizeMin", h)
    gmsh.option.setNumber("Mesh.MeshSizeMax", h)
    sides = {"left": [], "right": [], "bottom": [], "top": [], "hole": []}
    eps = 1e-6
    for (_, tag) in gmsh.model.getEntities(1):
        x0, y0, _, x1, y1, _ = gmsh.model.getBoundingBox(1, tag)
        if x1 < eps:
            sides["left"].append(tag)
        elif x0 > 1 - eps:
            sides["right"].append(tag)
        elif y1 < eps:
            sides["bottom"].append(tag)
        elif y0 > 1 - eps:
            sides["top"].append(tag)
        else:
            sides["hole"].append(tag)
    for name, tags in sides.items():
        if tags:
            gmsh.model.addPhysicalGroup(1, tags, name=name)
    surfaces = [t for (_, t) in gmsh.model.getEntities(2)]
    gmsh.model.addPhysicalGroup(2, surfaces, name="domain")
    gmsh.model.mesh.generate(2)


def write(name, version=4.1, binary=False):
    gmsh.option.setNumber("Mesh.MshFileVersion", version)
    gmsh.option.setNumber("Mesh.Binary", 1 if binary else 0)
    gmsh.write(os.path.join(HERE, name))


gmsh.initialize()
gmsh.option.setNumber("General.Terminal", 0)
gmsh.option.setNumber("Mesh.RandomSeed", 1.0)
gmsh.model.add("square")
square(1 / 24)
write("square.msh")
write("square_v22_bin.msh", version=2.2, binary=True)
write("square_v41_bin.msh", version=4.1, binary=True)
gmsh.clear()
gmsh.model.add("square_order2")
square(1 / 2)
gmsh.model.mesh.setOrder(2)
write("square_order2.msh")
gmsh.clear()
gmsh.model.add("square_hole")
square(1 / 24, hole=(0.5, 0.7, 0.15))
write("square_hole.msh")
gmsh.finalize()
