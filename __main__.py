"""openwebui-fleet: shared services, Open WebUI apps x replicas, nginx in front, S3 backups."""
import pulumi

from components.analytics_job import AnalyticsJob, analytics_env, analytics_secrets, analytics_store_credentials
from components.backup_bucket import BackupBucket
from components.backup_job import (BackupJob, BackupRoleArgs, backup_credentials, job_env, job_secrets,
                                   job_store_credentials)
from components.config import load_stack_config
from components.firewall import HostFirewall
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
firewalls = {name: HostFirewall(f"firewall-{name}", rules, fleet.firewall, nodes[name],
                               topology.nodes[name].ssh.user)
             for name, rules in topology.firewalls.items()}
if firewalls:
    pulumi.export("firewallRules", {name: fw.ruleset for name, fw in firewalls.items()})
shared_node = nodes[topology.shared_node]
shared = SharedServices("shared", fleet.shared_services, shared_node, secrets, topology.postgres_settings,
                        topology.backup_apps, backup_bucket=topology.backup_bucket_on_fleet_storage,
                        reports=fleet.reports_on_fleet_storage(secrets.names))
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
    shared_endpoints = topology.endpoints[topology.shared_node]
    store = job_store_credentials(secrets, shared)
    BackupJob("backup", fleet.backup, shared_node,
              job_env(pulumi.get_stack(), fleet.backup, topology.backup_apps, shared_endpoints),
              job_secrets(store, shared, secrets, {name: apps[name].db_password for name in topology.backup_apps}),
              BackupRoleArgs(topology.backup_apps, shared_endpoints, shared.postgres_image, shared.postgres_password),
              signing_key=secrets.get("backupSigningKey"), ca=shared.tls,
              opts=pulumi.ResourceOptions(depends_on=[bucket, *apps.values()]))
    pulumi.export("backupBucket", backup_output(fleet.backup))
    if fleet.analytics is not None:
        AnalyticsJob("analytics", fleet.analytics, shared_node,
                     analytics_env(pulumi.get_stack(), fleet.analytics, fleet.backup, topology.backup_apps,
                                   topology.endpoints[topology.shared_node]),
                     analytics_secrets(analytics_store_credentials(secrets, shared),
                                       {name: app.analytics_password for name, app in apps.items()}),
                     ca=shared.tls,
                     opts=pulumi.ResourceOptions(depends_on=[bucket, *apps.values()]))

pulumi.export("apps", {name: app_output(placed) for name, placed in topology.apps.items()})
pulumi.export("sharedServices", shared_services_output(fleet.shared_services, topology))
pulumi.export("nodes", nodes_output(topology))
