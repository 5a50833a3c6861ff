"""openwebui-fleet: shared services, Open WebUI apps x replicas, nginx in front, S3 backups."""
import pulumi

from components.backup_bucket import BackupBucket
from components.backup_job import BackupJob, backup_credentials, job_env, job_secrets
from components.config import load_stack_config
from components.endpoints import replicas, shared_endpoints
from components.load_balancer import NginxLoadBalancer, lb_nginx_conf
from components.node import FleetNode
from components.openwebui_app import OpenWebUIApp
from components.outputs import app_output, public_url, shared_services_output
from components.shared_services import SharedServices

fleet, secrets = load_stack_config()

nodes = {name: FleetNode(name, node, fleet.ssh_user, fleet.ssh_opts, secrets.get("sshPrivateKey"))
         for name, node in fleet.nodes.items()}
endpoints_from = {name: shared_endpoints(fleet, name) for name in fleet.nodes}

shared = SharedServices("shared", fleet.shared_services, nodes[fleet.shared_services.node], secrets)

apps = {
    name: OpenWebUIApp(name, spec, replicas(fleet, name), public_url(fleet, name), endpoints_from,
                       shared, nodes, secrets.apps[name])
    for name, spec in fleet.apps.items()
}

if fleet.load_balancer is not None:
    lb_node = nodes[fleet.load_balancer.node]
    lb = NginxLoadBalancer("lb", fleet.load_balancer, lb_node, lb_nginx_conf(fleet), lb_node.ssh,
                           depends_on=list(apps.values()), tls_secrets=secrets.lb_tls())
    pulumi.export("lbNginxConf", lb.nginx_conf)

if fleet.backup is not None:
    credentials = backup_credentials(secrets, shared)
    bucket = BackupBucket("backups", fleet.backup, **credentials, depends_on=shared.ready)
    BackupJob("backup", fleet.backup, shared.node,
              job_env(pulumi.get_stack(), fleet.backup, list(fleet.apps), endpoints_from[shared.node.name]),
              job_secrets(credentials, shared), depends_on=[bucket, *apps.values()])
    pulumi.export("backupBucket", {"name": fleet.backup.bucket, "endpoint": fleet.backup.endpoint or "aws",
                                   "schedule": fleet.backup.schedule})

pulumi.export("apps", {name: app_output(fleet, name, app.replicas) for name, app in apps.items()})
pulumi.export("sharedServices", shared_services_output(fleet))
pulumi.export("nodes", {name: {"address": node.address} for name, node in nodes.items()})
