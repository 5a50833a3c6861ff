"""openwebui-fleet policy pack: `pulumi preview --policy-pack policy` (run from the project directory)."""
from pulumi_policy import PolicyPack

from fleet_policies import MANDATORY, POLICIES

PolicyPack("openwebui-fleet", POLICIES, enforcement_level=MANDATORY,
           description="Pinned images, ports on node addresses, secret envs, configured backup buckets.")
