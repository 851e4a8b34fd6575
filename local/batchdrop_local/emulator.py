"""The embedded AWS: moto in server mode on 127.0.0.1, and the stack created from `template.yaml`.

Every resource is created from the template's own properties through the
ordinary AWS APIs (over HTTP, with real boto3 clients), in dependency order,
so the local stack has the table keys and indexes, queue settings, bucket
notifications and function environments a deployment has. What moto cannot
do is named in `batchdrop_local.bridges`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from batchdrop_local import bridges
from batchdrop_local.template import TEMPLATE, Resolver, load_template, parameter_defaults

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's account
STACK_NAME = "batchdrop-local"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class EmbeddedAws:
    """moto on a free port of 127.0.0.1, with Docker use switched off for Batch and Lambda."""

    def __init__(self) -> None:
        self.endpoint = ""
        self._clients: dict[str, Any] = {}

    def _new_server(self) -> Any:
        # Imported here: processes that only talk to an emulator elsewhere need not load moto.
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: PLC0415

        return ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> EmbeddedAws:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = self._new_server()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.configure()
        return self

    def configure(self) -> None:
        """Batch without Docker finishes jobs at once instead of running containers (see bridges)."""
        self._post("/moto-api/config", {"batch": {"use_docker": False}, "lambda": {"use_docker": False}})

    def reset(self) -> None:
        """Forget every resource (and configuration), as a fresh emulator."""
        self._post("/moto-api/reset", {})
        self.configure()

    def stop(self) -> None:
        self._server.stop()

    def _post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310  # loopback, our own server
            self.endpoint + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def environment(self) -> dict[str, str]:
        """What a process needs in its environment for boto3 to talk to this emulator."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106  # the emulator takes any credentials
            region_name=REGION,
        )

    def client(self, service: str) -> Any:
        """A client for this emulator (made once per service: creating one costs ~50 ms)."""
        if service not in self._clients:
            self._clients[service] = self.session().client(  # type: ignore[call-overload]
                service, endpoint_url=self.endpoint
            )
        return self._clients[service]


class SeparateEmbeddedAws(EmbeddedAws):
    """The same emulator in a child process: its memory and CPU are not the caller's."""

    def __init__(self) -> None:
        super().__init__()
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> SeparateEmbeddedAws:
        self._process = subprocess.Popen(  # our own module, this interpreter
            [sys.executable, "-m", "batchdrop_local.serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.endpoint = self._process.stdout.readline().strip()
        if not self.endpoint.startswith("http://"):
            raise RuntimeError("the emulator process did not start")
        self.configure()
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()  # asks it to stop; a moto busy with state may not, so then it is ended
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        self._process = None


@contextmanager
def environment_of(aws: EmbeddedAws) -> Iterator[None]:
    """Point boto3 in this process at the emulator for the duration."""
    saved = {name: os.environ.get(name) for name in aws.environment()}
    os.environ.update(aws.environment())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class LocalFunction:
    """A function of the template: its code, handler, environment and event sources."""

    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    environment: dict[str, str]
    events: dict[str, dict[str, Any]]


@dataclass
class Stack:
    resolver: Resolver
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> Any:
        return self.resolver.refs[logical_id]

    def attribute(self, logical_id: str, name: str) -> Any:
        return self.resolver.attributes[(logical_id, name)]


Creator = Callable[["_Deployment", str, dict[str, Any]], tuple[Any, dict[str, Any]]]
SKIPPED: dict[str, str] = {
    "AWS::Serverless::LayerVersion": "the layer's package is installed in the local Python environment",
}


class _Deployment:
    def __init__(self, aws: EmbeddedAws, template: dict[str, Any], parameters: dict[str, Any]) -> None:
        self.aws = aws
        self.template = template
        self.resolver = Resolver(
            template=template,
            parameters={**parameter_defaults(template), **parameters},
            pseudo={
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Region": REGION,
                "AWS::Partition": "aws",
                "AWS::StackName": STACK_NAME,
                "AWS::URLSuffix": "amazonaws.com",
            },
        )
        self.stack = Stack(resolver=self.resolver)

    def physical_name(self, logical_id: str, *, lower: bool = False) -> str:
        name = f"{STACK_NAME}-{logical_id}"
        return name.lower() if lower else name

    def run(self) -> Stack:
        resources = self.template["Resources"]
        for logical_id in _creation_order(resources):
            declaration = resources[logical_id]
            kind = declaration["Type"]
            if kind in SKIPPED:  # referable, but nothing to create
                self.resolver.refs[logical_id] = f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}"
                continue
            if "Condition" in declaration and not self.resolver.condition(declaration["Condition"]):
                continue
            creator = CREATORS.get(kind)
            if creator is None:
                raise NotImplementedError(f"{logical_id}: the local stack cannot create {kind} yet")
            properties = self.resolver.resolve(declaration.get("Properties", {}))
            ref, attributes = creator(self, logical_id, properties)
            self.resolver.refs[logical_id] = ref
            for name, value in attributes.items():
                self.resolver.attributes[(logical_id, name)] = value
        for name, output in self.template.get("Outputs", {}).items():
            value = self.resolver.resolve(output["Value"])
            self.stack.outputs[name] = str(value)
        return self.stack


def deploy(aws: EmbeddedAws, parameters: dict[str, Any], template: dict[str, Any] | None = None) -> Stack:
    """Create every resource of the template in the emulator; return what was made."""
    return _Deployment(aws, template or load_template(), parameters).run()


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found.update(match.split(".")[0] for match in re.findall(r"\$\{([^}!]+)\}", text))
                if not isinstance(item, str):
                    found.update(_references(item[1]))
            else:
                found.update(_references(item))
    elif isinstance(value, list):
        for item in value:
            found.update(_references(item))
    return found


def _creation_order(resources: dict[str, Any]) -> list[str]:
    depends: dict[str, set[str]] = {}
    for logical_id, declaration in resources.items():
        needed = _references(declaration.get("Properties", {}))
        explicit = declaration.get("DependsOn", [])
        needed.update([explicit] if isinstance(explicit, str) else explicit)
        depends[logical_id] = {name for name in needed if name in resources and name != logical_id}
    order: list[str] = []
    while len(order) < len(resources):
        ready = sorted(name for name in resources if name not in order and depends[name] <= set(order))
        if not ready:
            raise ValueError(f"circular references among {sorted(set(resources) - set(order))}")
        order.extend(ready)
    return order


# ------------------------------------------------------------------ creators, one per resource type


def _kms_key(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    kms = deployment.aws.client("kms")
    key = kms.create_key(Description=properties.get("Description", logical_id))["KeyMetadata"]
    if properties.get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]}


def _kms_alias(deployment: _Deployment, _logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    deployment.aws.client("kms").create_alias(AliasName=properties["AliasName"], TargetKeyId=properties["TargetKeyId"])
    return properties["AliasName"], {}


def _dynamodb_table(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    dynamodb = deployment.aws.client("dynamodb")
    name = properties.get("TableName", deployment.physical_name(logical_id))
    arguments: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    sse = properties.get("SSESpecification")
    if sse:
        arguments["SSESpecification"] = {
            "Enabled": sse.get("SSEEnabled", False),
            **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
            **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
        }
    table = dynamodb.create_table(**arguments)["TableDescription"]
    recovery = properties.get("PointInTimeRecoverySpecification", {})
    if recovery.get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name, {"Arn": table["TableArn"]}


def _s3_bucket(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    s3 = deployment.aws.client("s3")
    name = properties.get("BucketName", deployment.physical_name(logical_id, lower=True))
    s3.create_bucket(Bucket=name)
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=properties["VersioningConfiguration"])
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
        )
    if "BucketEncryption" in properties:
        rules = [  # CloudFormation's names -> the S3 API's
            {
                **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
            }
            for rule in properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    notifications = properties.get("NotificationConfiguration")
    if notifications:
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration=_notification_configuration(notifications)
        )
    return name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}


def _notification_configuration(declared: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's shape of bucket notifications -> the S3 API's."""

    def rules(entry: dict[str, Any]) -> dict[str, Any]:
        filters = entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        return {"Filter": {"Key": {"FilterRules": filters}}} if filters else {}

    return {
        "QueueConfigurations": [
            {"QueueArn": entry["Queue"], "Events": [entry["Event"]], **rules(entry)}
            for entry in declared.get("QueueConfigurations", [])
        ],
        "TopicConfigurations": [
            {"TopicArn": entry["Topic"], "Events": [entry["Event"]], **rules(entry)}
            for entry in declared.get("TopicConfigurations", [])
        ],
    }


def _s3_bucket_policy(
    deployment: _Deployment, logical_id: str, properties: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    policy = bridges.without_tls_only_statements(properties["PolicyDocument"])
    if policy["Statement"]:
        deployment.aws.client("s3").put_bucket_policy(Bucket=properties["Bucket"], Policy=json.dumps(policy))
    return logical_id, {}


def _sqs_queue(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    sqs = deployment.aws.client("sqs")
    name = properties.get("QueueName", deployment.physical_name(logical_id))
    attributes = {
        key: json.dumps(value) if isinstance(value, dict) else str(value)
        for key, value in properties.items()
        if key not in {"QueueName", "Tags"}
    }
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}


def _sqs_queue_policy(
    deployment: _Deployment, logical_id: str, properties: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    sqs = deployment.aws.client("sqs")
    for url in properties["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])})
    return logical_id, {}


def _sns_topic(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    attributes = {key: str(properties[key]) for key in ("DisplayName", "KmsMasterKeyId") if key in properties}
    name = properties.get("TopicName", deployment.physical_name(logical_id))
    arn = deployment.aws.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    return arn, {"TopicArn": arn, "TopicName": name}


def _function(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Functions are not created in moto (it cannot run them without Docker): the local runtime runs them."""
    globals_ = deployment.resolver.resolve(deployment.template.get("Globals", {}).get("Function", {}))
    variables = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    name = deployment.physical_name(logical_id)
    deployment.stack.functions[logical_id] = LocalFunction(
        logical_id=logical_id,
        code_dir=TEMPLATE.parent / properties["CodeUri"],
        handler=properties["Handler"],
        timeout=int(properties.get("Timeout", globals_.get("Timeout", 3))),
        environment={key: str(value) for key, value in variables.items()},
        events=properties.get("Events", {}),
    )
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    return name, {"Arn": arn}


def _events_rule(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    events = deployment.aws.client("events")
    name = properties.get("Name", deployment.physical_name(logical_id))
    arguments: dict[str, Any] = {"Name": name, "State": properties.get("State", "ENABLED")}
    if "EventPattern" in properties:
        arguments["EventPattern"] = json.dumps(properties["EventPattern"])
    if "ScheduleExpression" in properties:
        arguments["ScheduleExpression"] = properties["ScheduleExpression"]
    if "Description" in properties:
        arguments["Description"] = properties["Description"]
    arn = events.put_rule(**arguments)["RuleArn"]
    if properties.get("Targets"):
        events.put_targets(Rule=name, Targets=properties["Targets"])
    return name, {"Arn": arn}


def _secret(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    arguments: dict[str, Any] = {"Name": properties.get("Name", deployment.physical_name(logical_id))}
    for key in ("Description", "KmsKeyId", "SecretString"):
        if key in properties:
            arguments[key] = properties[key]
    arn = deployment.aws.client("secretsmanager").create_secret(**arguments)["ARN"]
    return arn, {"Id": arn}


def _sns_subscription(
    deployment: _Deployment, _logical_id: str, properties: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    attributes = {
        key: json.dumps(properties[key]) if isinstance(properties[key], dict) else str(properties[key])
        for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
        if key in properties
    }
    arn = deployment.aws.client("sns").subscribe(
        TopicArn=properties["TopicArn"],
        Protocol=properties["Protocol"],
        Endpoint=properties["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return arn, {}


CREATORS: dict[str, Creator] = {
    "AWS::SecretsManager::Secret": _secret,
    "AWS::SNS::Subscription": _sns_subscription,
    "AWS::Events::Rule": _events_rule,
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::S3::Bucket": _s3_bucket,
    "AWS::S3::BucketPolicy": _s3_bucket_policy,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::SQS::QueuePolicy": _sqs_queue_policy,
    "AWS::SNS::Topic": _sns_topic,
    "AWS::Serverless::Function": _function,
}
