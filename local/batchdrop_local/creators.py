"""How the local stack creates each type of resource of `template.yaml`, from its own properties.

One function per CloudFormation type: it gets the resolved properties and
returns what `Ref` and `Fn::GetAtt` of the resource give. A type that needs
no local counterpart is listed in SKIPPED with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from batchdrop_local import bridges
from batchdrop_local.stack_model import ACCOUNT_ID, REGION, LocalFunction
from batchdrop_local.template import TEMPLATE

if TYPE_CHECKING:
    from batchdrop_local.emulator import _Deployment

Creator = Callable[["_Deployment", str, dict[str, Any]], tuple[Any, dict[str, Any]]]
SKIPPED: dict[str, str] = {
    "AWS::Serverless::LayerVersion": "the layer's package is installed in the local Python environment",
}


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
    stream = properties.get("StreamSpecification")
    if stream:
        arguments["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
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
    attributes = {"Arn": table["TableArn"]}
    if "LatestStreamArn" in table:
        attributes["StreamArn"] = table["LatestStreamArn"]
    return name, attributes


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


def _iam_role(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Made in moto (which checks the policies' grammar, not what they allow): the functions' roles."""
    if properties.get("ManagedPolicyArns"):
        raise NotImplementedError(f"{logical_id}: moto holds no AWS managed policies to attach")
    iam = deployment.aws.client("iam")
    name = properties.get("RoleName", deployment.physical_name(logical_id))
    arguments: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": json.dumps(properties["AssumeRolePolicyDocument"]),
    }
    if "Description" in properties:
        arguments["Description"] = properties["Description"]
    role = iam.create_role(**arguments)["Role"]
    for policy in properties.get("Policies", []):
        iam.put_role_policy(
            RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
        )
    return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}


def _managed_policy(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Made in moto (grammar checked, nothing enforced): the operators' policy, for the stack's output."""
    name = properties.get("ManagedPolicyName", deployment.physical_name(logical_id))
    arguments: dict[str, Any] = {"PolicyName": name, "PolicyDocument": json.dumps(properties["PolicyDocument"])}
    if "Description" in properties:
        arguments["Description"] = properties["Description"]
    policy = deployment.aws.client("iam").create_policy(**arguments)["Policy"]
    return policy["Arn"], {"PolicyArn": policy["Arn"]}


def _log_group(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    logs = deployment.aws.client("logs")
    name = properties.get("LogGroupName", deployment.physical_name(logical_id))
    arguments: dict[str, Any] = {"logGroupName": name}
    if "KmsKeyId" in properties:
        arguments["kmsKeyId"] = properties["KmsKeyId"]
    logs.create_log_group(**arguments)
    if "RetentionInDays" in properties:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(properties["RetentionInDays"]))
    return name, {"Arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"}


_ALARM_KEYS = (  # CloudFormation's names are PutMetricAlarm's
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Unit",
    "Metrics",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)
_ALARM_NUMBERS = ("Period", "EvaluationPeriods", "DatapointsToAlarm")


def _alarm(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    name = properties.get("AlarmName", deployment.physical_name(logical_id))
    arguments: dict[str, Any] = {key: properties[key] for key in _ALARM_KEYS if key in properties}
    arguments.update({key: int(properties[key]) for key in _ALARM_NUMBERS if key in properties})
    if "Threshold" in arguments:
        arguments["Threshold"] = float(arguments["Threshold"])
    for query in arguments.get("Metrics", []):
        if "Period" in query:
            query["Period"] = int(query["Period"])
    deployment.aws.client("cloudwatch").put_metric_alarm(AlarmName=name, **arguments)
    return name, {"Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{name}"}


def _dashboard(deployment: _Deployment, logical_id: str, properties: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    name = properties.get("DashboardName", deployment.physical_name(logical_id))
    json.loads(properties["DashboardBody"])  # CloudWatch refuses a body that is not JSON; so does the local stack
    deployment.aws.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=properties["DashboardBody"])
    return name, {}


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
    "AWS::IAM::Role": _iam_role,
    "AWS::IAM::ManagedPolicy": _managed_policy,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::CloudWatch::Dashboard": _dashboard,
}
