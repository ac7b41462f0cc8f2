"""The manifest's sections: the unit of extension of the manifest.

A section is one top-level key of the manifest (`iam`, `ecr`, `images`,
`network`) and one module here holding everything the tool derives from it:
its expansion into `DesiredResource(address, kind, spec, depends_on)`, its
semantic checks and its security findings (with the rules they report). Each
module ends with `SECTION = Section(...)` (the shape is in `manifest/section.py`);
`SECTIONS` below is the registry, in a fixed order. `expand.py`, `checks.py` and
`findings.py` are loops over it plus the rules that cut across sections
(credentials, tags, waivers, policy files, the region, unique addresses,
dependencies that resolve).

Rules of the house: a section imports the ground floor (`errors`, `ownership`,
`canonical`) and the floor of `manifest/` (`model`, `loader`, `common`,
`section`, `paths`, `suggest`, `aws_names`, `image_inputs`), never another
section nor the loops; a helper two sections need goes to `common.py`.
Nothing outside `manifest/` imports a section but the three loops (and tests):
the kinds see only `manifest.model`.

How to add a kind to a section (say `ec2.network_acl` to `network`):
1. write the kind (`reconciler/kinds/ec2/network_acl.py`, see DESIGN.md);
2. in the section's module, expand the manifest's new keys into resources of
   that kind: a stable address (`vpc.NAME.acl.ACL`), a spec holding only what the
   manifest declares plus defaults, references to other resources written as
   their addresses and listed in `depends_on`; tags from `common.protected_tags`
   (or `ownership_tags`), never written by hand (`expand.py` adds
   `reconciler:kind`);
3. add the kind's name to the section's `kinds`;
4. check what the schema cannot (references by name, uniqueness, ranges across
   fields) in the section's `checks`, and add any security rule to its `rules`
   and `findings` (rule ids `RC-<AREA>-<NNN>`, unique across sections; give the
   rule a row in docs/manifest.md's findings table);
5. the schema `$defs` for the new keys (`reconciler/schemas/`), and a row in
   docs/manifest.md's "Kinds" table; an integration test naming the kind.
`tests/unit/test_kind_registry.py` fails until steps 3 and 5 are done and an
example manifest (or its own minimal one) produces the kind.

How to add a section (a new top-level key, say `sqs`):
1. its schema: a top-level property and its `$defs`;
2. `reconciler/manifest/sections/sqs.py` with `expand`, `checks`, optionally
   `findings` and `rules`, and `SECTION = Section(key="sqs", kinds=(...), ...)`;
   set `needs` to the other top-level keys its checks read (`images` reads
   `ecr`), so a schema error there skips them instead of tripping them;
3. append it to `SECTIONS` below (the order is the order of expansion and
   checks; the output is sorted either way, so append);
4. then each of its kinds as above.
Nothing else changes: expansion, checks, findings, waivers and the registry
test pick it up from `SECTIONS`.
"""

from __future__ import annotations

from reconciler.manifest.section import Section

# each submodule by its full name: an import graph read from the source then sees no edge back to this package
from reconciler.manifest.sections.ecr import SECTION as ECR
from reconciler.manifest.sections.iam import SECTION as IAM
from reconciler.manifest.sections.images import SECTION as IMAGES
from reconciler.manifest.sections.network import SECTION as NETWORK

SECTIONS: tuple[Section, ...] = (IAM, ECR, IMAGES, NETWORK)
