"""openwebui-fleet: shared services, Open WebUI apps x replicas, nginx in front, S3 backups."""
import pulumi

from components.backup_bucket import BackupBucket
from components.backup_job import BackupJob, backup_credentials, job_env, job_secrets
from components.config import load_stack_config
from components.load_balancer import NginxLoadBalancer
from components.node import FleetNode
from components.openwebui_app import OpenWebUIApp
from components.outputs import (app_output, app_urls, backup_output, lb_output, nodes_output,
                                shared_services_output)
from components.shared_services import SharedServices
from components.topology import resolve

fleet, secrets = load_stack_config()
topology = resolve(fleet)
pulumi.export("appUrls", app_urls(topology))  # first: `pulumi stack output` sorts names, and it sorts first

nodes = {name: FleetNode(name, node, secrets.get("sshPrivateKey")) for name, node in topology.nodes.items()}
shared_node = nodes[topology.shared_node]
shared = SharedServices("shared", fleet.shared_services, shared_node, secrets)
apps = {name: OpenWebUIApp(name, fleet.apps[name], placed, topology.endpoints, shared, nodes, secrets.apps[name])
        for name, placed in topology.apps.items()}

if fleet.load_balancer is not None:
    lb = NginxLoadBalancer("lb", fleet.load_balancer, nodes[fleet.load_balancer.node], topology.apps,
                           tls_secrets=secrets.lb_tls(),
                           opts=pulumi.ResourceOptions(depends_on=list(apps.values())))
    pulumi.export("lb", lb_output(lb.nginx_conf))

if fleet.backup is not None:
    credentials = backup_credentials(secrets, shared)
    bucket = BackupBucket("backups", fleet.backup, **credentials,
                          opts=pulumi.ResourceOptions(depends_on=shared.ready))
    BackupJob("backup", fleet.backup, shared_node,
              job_env(pulumi.get_stack(), fleet.backup, topology.backup_apps, topology.endpoints[topology.shared_node]),
              job_secrets(credentials, shared), opts=pulumi.ResourceOptions(depends_on=[bucket, *apps.values()]))
    pulumi.export("backupBucket", backup_output(fleet.backup))

pulumi.export("apps", {name: app_output(placed) for name, placed in topology.apps.items()})
pulumi.export("sharedServices", shared_services_output(fleet.shared_services, topology))
pulumi.export("nodes", nodes_output(topology))
