"""Backing services: ElastiCache (memcached across zones or Multi-AZ Redis) and RDS Multi-AZ with a managed secret."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from troposphere import GetAtt, Ref, Template
from troposphere.ec2 import SecurityGroup
from troposphere.elasticache import CacheCluster, ReplicationGroup
from troposphere.elasticache import SubnetGroup as CacheSubnetGroup
from troposphere.rds import DBInstance, DBSubnetGroup
from troposphere.secretsmanager import GenerateSecretString, Secret

from sprout.providers.aws.context import ZONE_COUNT, RenderContext
from sprout.providers.aws.network import Network
from sprout.providers.aws.security import CACHE_PORTS, DB_PORTS, SecurityGroups
from sprout.providers.aws.skips import skip_checks

CACHE_NODE_TYPE = "cache.t3.micro"
DB_INSTANCE_CLASS = "db.t3.micro"
DB_STORAGE_GB = 20
DB_USER = "sprout"
APP_PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class DataRefs:
    """What instances learn about the data services at boot (`${Resource.Attr}` placeholders), and the secrets."""

    sessions: dict[str, str] | None = None
    database: dict[str, str] | None = None
    secret_arns: tuple[object, ...] = ()


def add_data(t: Template, ctx: RenderContext, network: Network, groups: SecurityGroups) -> DataRefs:
    """Create the session store and the database the manifest asks for (none when a url is given)."""
    sessions = database = None
    secret_arns: tuple[object, ...] = ()
    if groups.cache is not None:
        sessions = _cache(t, ctx, network, groups.cache)
    if groups.database is not None:
        database = _database(t, ctx, network, groups.database)
        secret_arns = (GetAtt("Database", "MasterUserSecret.SecretArn"), Ref("AppDatabaseSecret"))
    return DataRefs(sessions=sessions, database=database, secret_arns=secret_arns)


def _cache(t: Template, ctx: RenderContext, network: Network, group: SecurityGroup) -> dict[str, str]:
    engine = ctx.manifest.resources.sessions.engine
    subnets = t.add_resource(
        CacheSubnetGroup(
            "CacheSubnetGroup",
            Description=f"{ctx.stack_name} session store",
            SubnetIds=network.private_subnets,
        )
    )
    if engine == "memcached":
        zones = {"PreferredAvailabilityZones": network.zones} if network.zones else {}
        t.add_resource(
            CacheCluster(
                "SessionCache",
                Engine="memcached",
                CacheNodeType=CACHE_NODE_TYPE,
                NumCacheNodes=ZONE_COUNT,
                AZMode="cross-az",
                CacheSubnetGroupName=Ref(subnets),
                VpcSecurityGroupIds=[GetAtt(group, "GroupId")],
                Tags=ctx.tags(),
                **zones,
            )
        )
        # The agent finds every node through ElastiCache auto discovery on the configuration endpoint.
        return {
            "engine": "memcached",
            "discovery": "${SessionCache.ConfigurationEndpoint.Address}:${SessionCache.ConfigurationEndpoint.Port}",
        }
    group = t.add_resource(
        ReplicationGroup(
            "SessionCache",
            ReplicationGroupDescription=f"{ctx.stack_name} session store",
            Engine="redis",
            CacheNodeType=CACHE_NODE_TYPE,
            NumCacheClusters=ZONE_COUNT,
            AutomaticFailoverEnabled=True,
            MultiAZEnabled=True,
            AtRestEncryptionEnabled=True,
            TransitEncryptionEnabled=True,
            Port=CACHE_PORTS["redis"],
            CacheSubnetGroupName=Ref(subnets),
            SecurityGroupIds=[GetAtt(group, "GroupId")],
            Tags=ctx.tags(),
        )
    )
    skip_checks(
        group,
        {"CKV_AWS_31": "only the instances' security group reaches the cache; sessions need no AUTH token"},
    )
    return {
        "engine": "redis",
        "url": "rediss://${SessionCache.PrimaryEndPoint.Address}:${SessionCache.PrimaryEndPoint.Port}/0",
    }


def app_user(app: str) -> str:
    """The app's own database user: its database name with `_app` (MySQL allows 32 characters)."""
    return database_name(app)[:28] + "_app"


def database_name(app: str) -> str:
    """The database name for an app: its name without dashes (RDS allows letters and digits)."""
    return re.sub(r"[^A-Za-z0-9]", "", app)[:63]


def _database(t: Template, ctx: RenderContext, network: Network, group: SecurityGroup) -> dict[str, str]:
    engine = ctx.manifest.resources.database.engine
    subnets = t.add_resource(
        DBSubnetGroup(
            "DatabaseSubnetGroup",
            DBSubnetGroupDescription=f"{ctx.stack_name} database",
            SubnetIds=network.private_subnets,
            Tags=ctx.tags(),
        )
    )
    db = t.add_resource(
        DBInstance(
            "Database",
            # Deleting the stack keeps a final snapshot; `sprout aws down --purge` is the explicit way out.
            DeletionPolicy="Snapshot",
            UpdateReplacePolicy="Snapshot",
            Engine=engine,
            DBInstanceClass=DB_INSTANCE_CLASS,
            AllocatedStorage=str(DB_STORAGE_GB),
            StorageType="gp3",
            StorageEncrypted=True,
            MultiAZ=True,
            DBName=database_name(ctx.app),
            MasterUsername=DB_USER,
            ManageMasterUserPassword=True,
            DBSubnetGroupName=Ref(subnets),
            VPCSecurityGroups=[GetAtt(group, "GroupId")],
            PubliclyAccessible=False,
            BackupRetentionPeriod=7,
            Port=str(DB_PORTS[engine]),
            EnableIAMDatabaseAuthentication=True,
            CopyTagsToSnapshot=True,
            Tags=ctx.tags(),
        )
    )
    skip_checks(
        db,
        {
            "CKV_AWS_118": "Enhanced Monitoring costs extra per instance; the standard RDS metrics are in CloudWatch"
        },
    )
    # The app's own login: its password generated by Secrets Manager, its user made by the release phase.
    app_secret = t.add_resource(
        Secret(
            "AppDatabaseSecret",
            Description=f"{ctx.stack_name}: the app's own database login (not the master user)",
            GenerateSecretString=GenerateSecretString(
                SecretStringTemplate=json.dumps({"username": app_user(ctx.app)}),
                GenerateStringKey="password",
                PasswordLength=APP_PASSWORD_LENGTH,
                ExcludePunctuation=True,
            ),
            Tags=ctx.tags(),
        )
    )
    skip_checks(
        app_secret,
        {
            "CKV_AWS_149": "encrypted with the account's aws/secretsmanager key; a customer key adds cost "
            "and a key policy to keep",
        },
    )
    return {
        "engine": engine,
        "host": "${Database.Endpoint.Address}",
        "port": "${Database.Endpoint.Port}",
        "name": database_name(ctx.app),
        "secret_arn": "${Database.MasterUserSecret.SecretArn}",
        "app_secret_arn": "${AppDatabaseSecret}",
    }
