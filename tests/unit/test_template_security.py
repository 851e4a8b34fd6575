"""template.yaml's promises, checked on the template itself: least privilege, encryption, nothing lost.

cfn-lint and checkov check what they know of AWS; these check what batchdrop promises (docs/operations.md):
no wildcard grants outside a short list, every queue encrypted, every dead-letter queue alarmed, the data
kept, and a made Batch environment written into a platform config that loads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from batchdrop_local.streams import matches  # the local runtime's reading of Lambda's event filtering
from batchdrop_local.template import Resolver, load_template, parameter_defaults

from batchdrop.platform.config import parse_platform_config
from batchdrop.track.early_retry import retry_delay_seconds
from batchdrop.wiring.settings import TrackSettings

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
NO_VALUE = {"Ref": "AWS::NoValue"}

# The only actions granted on "*", each because AWS offers no resource-level permission for it.
STAR_RESOURCE_ALLOWED = {
    "batch:ListJobs": "ListJobs takes no resource: finding a job by its deterministic name",
    "batch:DescribeJobs": "DescribeJobs takes no resource: the reconcile sweep",
    "batch:DescribeJobDefinitions": "DescribeJobDefinitions takes no resource: a sweep wraps its definition's command",
    "batch:DescribeJobQueues": "DescribeJobQueues takes no resource: a stuck job's queue's compute environments",
    "batch:DescribeComputeEnvironments": "DescribeComputeEnvironments takes no resource: a stuck job's environments",
    "batch:DescribeSchedulingPolicies": "DescribeSchedulingPolicies takes no resource: the daily platform check",
    "ec2:DescribeInstanceTypes": "DescribeInstanceTypes takes no resource: the daily platform check's instance sizes",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions: Lambda's active tracing",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions: Lambda's active tracing",
}
KEY_ADMIN_SID = "AccountAdministers"  # the key policy's account-root statement: kms:* on the key, by design
DATA = ("RecordsTable", "JobsBucket", "DataKey", "SlackWebhooksSecret")


def of_type(kind: str) -> dict[str, Any]:
    return {name: resource for name, resource in RESOURCES.items() if resource["Type"] == kind}


def branches(value: Any) -> Iterator[Any]:
    """Every value an `Fn::If` may take (both sides), without `AWS::NoValue`."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _condition, when_true, when_false = value["Fn::If"]
        yield from branches(when_true)
        yield from branches(when_false)
    elif value != NO_VALUE:
        yield value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(document: Any) -> Iterator[dict[str, Any]]:
    for each in branches(document):
        for statement in as_list(each.get("Statement", [])):
            yield from branches(statement)


def policy_documents() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(resource, kind of policy, document) for every policy the template writes."""
    for name, resource in RESOURCES.items():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield name, "role", policy["PolicyDocument"]
        elif kind == "AWS::Serverless::Function":
            for policy in properties.get("Policies", []):
                for document in branches(policy):
                    if isinstance(document, dict):  # a named SAM policy template is a dict without Statement
                        yield name, "function", document
        elif kind in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            yield name, "identity", properties["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield name, "key", properties["KeyPolicy"]
        elif kind in {"AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"}:
            yield name, "resource", properties["PolicyDocument"]


def allowed() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, kind, document in policy_documents():
        for statement in statements(document):
            if statement.get("Effect") == "Allow":
                yield name, kind, statement


def resolver(**parameters: Any) -> Resolver:
    """The template's intrinsics evaluated with these parameters; every resource stands in by its name."""

    class AnyAttribute(dict[tuple[str, str], Any]):
        def __missing__(self, key: tuple[str, str]) -> str:
            return f"{key[0]}.{key[1]}"

    return Resolver(
        template=TEMPLATE,
        parameters={
            **parameter_defaults(TEMPLATE),
            "BatchJobQueueArns": ["arn:aws:batch:us-east-1:123456789012:job-queue/existing"],
            "BatchJobDefinitionArns": ["arn:aws:batch:us-east-1:123456789012:job-definition/existing:4"],
            **parameters,
        },
        pseudo={"AWS::AccountId": "123456789012", "AWS::Region": "us-east-1", "AWS::Partition": "aws"},
        refs={name: name for name in RESOURCES} | MADE_BATCH,
        attributes=AnyAttribute(),
    )


MADE_BATCH = {  # what Ref gives for the Batch resources of CreateBatchEnvironment=true
    "CpuJobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/batchdrop-dev-cpu",
    "GpuJobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/batchdrop-dev-gpu",
    "FirstTeamJobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/batchdrop-dev-vision:1",
    "SecondTeamJobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/batchdrop-dev-forecasting:1",
    "GeneratedPlatformConfig": "/batchdrop/dev/platform-config",
    "MultiNodeJobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/batchdrop-dev-gpu-multinode",
    "FirstTeamMultiNodeJobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/batchdrop-dev-vision-ddp:1",
}


# ---------------------------------------------------------------- least privilege


def test_the_template_has_policies_to_check() -> None:
    kinds = {kind for _, kind, _ in policy_documents()}
    assert {"role", "key", "resource"} <= kinds
    assert len(list(allowed())) > 40


def test_no_statement_grants_a_wildcard_action() -> None:
    for name, kind, statement in allowed():
        if kind == "key" and statement.get("Sid") == KEY_ADMIN_SID:
            assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
            continue
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{name} ({statement.get('Sid')}) grants {action}"


def test_star_resources_only_for_actions_aws_cannot_scope() -> None:
    for name, kind, statement in allowed():
        if kind == "key":  # in a key policy, "*" means the key itself: the only form it takes
            continue
        for resource in branches(statement.get("Resource")):
            if "*" in as_list(resource):
                actions = set(as_list(statement["Action"]))
                assert actions <= set(STAR_RESOURCE_ALLOWED), f"{name} ({statement.get('Sid')}) grants {actions} on *"


def test_nothing_passes_roles_or_grants_iam() -> None:
    for name, _, statement in allowed():
        for action in as_list(statement["Action"]):
            assert not action.lower().startswith("iam:"), f"{name} grants {action}"


def test_functions_use_their_own_roles_and_sam_adds_no_managed_policy() -> None:
    for name, function in of_type("AWS::Serverless::Function").items():
        properties = function["Properties"]
        assert properties["Role"] == {"Fn::GetAtt": [f"{name}Role", "Arn"]}
        assert "Policies" not in properties, "with Role set, SAM would ignore them"


def test_each_function_writes_only_its_own_log_group_which_keeps_logs_encrypted() -> None:
    for name, function in of_type("AWS::Serverless::Function").items():
        function_name = function["Properties"]["FunctionName"]["Fn::Sub"]
        (logs,) = (
            s
            for s in statements(RESOURCES[f"{name}Role"]["Properties"]["Policies"][0]["PolicyDocument"])
            if s["Sid"] == "OwnLogs"
        )
        assert logs["Resource"]["Fn::Sub"].endswith(f"log-group:/aws/lambda/{function_name}:*")
        group = RESOURCES[f"{name}LogGroup"]["Properties"]
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{name}}}"}
        assert group["KmsKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize("made", ["false", "true"])
def test_submit_job_is_granted_on_exactly_the_platforms_queues_and_revisions(made: str) -> None:
    role = resolver(CreateBatchEnvironment=made).resolve(RESOURCES["SubmitFunctionRole"]["Properties"])
    (submit,) = (s for s in role["Policies"][0]["PolicyDocument"]["Statement"] if s["Action"] == "batch:SubmitJob")
    if made == "true":
        expected = [
            MADE_BATCH[name]
            for name in ("CpuJobQueue", "GpuJobQueue", "FirstTeamJobDefinition", "SecondTeamJobDefinition")
        ]
    else:
        expected = [
            "arn:aws:batch:us-east-1:123456789012:job-queue/existing",
            "arn:aws:batch:us-east-1:123456789012:job-definition/existing:4",
        ]
    assert submit["Resource"] == expected
    for arn in submit["Resource"]:
        if ":job-definition/" in arn:
            assert arn.rsplit(":", 1)[1].isdigit(), f"{arn} has no revision"


# ---------------------------------------------------------------- encryption and keeping the data


def test_every_queue_and_topic_is_encrypted_with_the_stacks_key() -> None:
    for name, queue in of_type("AWS::SQS::Queue").items():
        assert queue["Properties"].get("KmsMasterKeyId") == {"Ref": "DataKey"}, name
    for name, topic in of_type("AWS::SNS::Topic").items():
        assert topic["Properties"].get("KmsMasterKeyId") == {"Ref": "DataKey"}, name


def test_table_is_encrypted_and_recoverable() -> None:
    table = RESOURCES["RecordsTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "DataKey"}


def test_bucket_is_versioned_private_encrypted_and_tls_only() -> None:
    bucket = RESOURCES["JobsBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    kms, s3 = list(branches(rule))
    assert kms["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert kms["BucketKeyEnabled"] is True
    assert s3["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert TEMPLATE["Parameters"]["JobsBucketEncryption"]["Default"] == "aws:kms"
    (deny,) = RESOURCES["JobsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_data_outlives_the_stack() -> None:
    for name in DATA:
        assert RESOURCES[name].get("DeletionPolicy") == "Retain", name
        assert RESOURCES[name].get("UpdateReplacePolicy") == "Retain", name


def test_the_webhooks_secret_starts_empty() -> None:
    assert RESOURCES["SlackWebhooksSecret"]["Properties"]["SecretString"] == "{}"


# ---------------------------------------------------------------- nothing lost, and someone told


def queue_of(arn: Any) -> str:
    assert isinstance(arn, dict), arn
    assert arn.get("Fn::GetAtt", [None, None])[1] == "Arn", arn
    return str(arn["Fn::GetAtt"][0])


def dead_letter_queues() -> set[str]:
    """Every queue something fails to: redrive targets, rule and schedule DLQs, on-failure destinations."""
    found = set()
    for queue in of_type("AWS::SQS::Queue").values():
        if "RedrivePolicy" in queue["Properties"]:
            found.add(queue_of(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]))
    for rule in of_type("AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            found.add(queue_of(target["DeadLetterConfig"]["Arn"]))
    for subscription in of_type("AWS::SNS::Subscription").values():
        found.add(queue_of(subscription["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]))
    for function in of_type("AWS::Serverless::Function").values():
        properties = function["Properties"]
        if "EventInvokeConfig" in properties:
            found.add(queue_of(properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]))
        for event in properties["Events"].values():
            event_properties = event["Properties"]
            if event["Type"] == "Schedule":
                found.add(queue_of(event_properties["DeadLetterConfig"]["Arn"]))
            if event["Type"] == "SNS":
                found.add(queue_of(event_properties["RedrivePolicy"]["deadLetterTargetArn"]))
            if event["Type"] == "DynamoDB":
                found.add(queue_of(event_properties["DestinationConfig"]["OnFailure"]["Destination"]))
    return found


def test_every_asynchronous_hop_has_somewhere_to_fail_to() -> None:
    for name, function in of_type("AWS::Serverless::Function").items():
        properties = function["Properties"]
        for event in properties["Events"].values():
            if event["Type"] in {"SNS", "Schedule"}:  # invoked asynchronously
                assert properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS", name
    for name, rule in of_type("AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            assert "DeadLetterConfig" in target, name
    for name, subscription in of_type("AWS::SNS::Subscription").items():
        assert "RedrivePolicy" in subscription["Properties"], name


def test_every_queue_a_function_consumes_has_a_redrive_policy() -> None:
    for function in of_type("AWS::Serverless::Function").values():
        for event in function["Properties"]["Events"].values():
            if event["Type"] == "SQS":
                name = queue_of(event["Properties"]["Queue"])
                queue = RESOURCES[name]["Properties"]
                assert "RedrivePolicy" in queue, name
                assert queue["RedrivePolicy"]["maxReceiveCount"] >= 1


def test_every_queue_is_consumed_with_a_redrive_or_is_a_dead_letter_queue() -> None:
    for name, queue in of_type("AWS::SQS::Queue").items():
        assert "RedrivePolicy" in queue["Properties"] or name in dead_letter_queues(), name


def alarms() -> dict[str, dict[str, Any]]:
    return {name: alarm["Properties"] for name, alarm in of_type("AWS::CloudWatch::Alarm").items()}


def test_every_dead_letter_queue_has_a_depth_alarm() -> None:
    watched = {
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in alarms().values()
        if alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and alarm["Threshold"] == 0
        and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    }
    queues = dead_letter_queues()
    assert queues >= {
        "IntakeDeadLetterQueue",
        "TrackingDeadLetterQueue",
        "EventDeliveryDeadLetterQueue",
        "NotifyFailuresQueue",
    }
    assert queues <= watched


def test_every_function_has_error_and_throttle_alarms() -> None:
    for name in of_type("AWS::Serverless::Function"):
        metrics = {
            alarm["MetricName"]
            for alarm in alarms().values()
            if alarm.get("Namespace") == "AWS/Lambda"
            and alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": name}}]
        }
        assert metrics >= {"Errors", "Throttles"}, name
    publish = {
        alarm["MetricName"]
        for alarm in alarms().values()
        if alarm.get("Dimensions", [{}])[0].get("Value") == {"Ref": "PublishFunction"}
    }
    assert "IteratorAge" in publish, "the outbox's reader falling behind is alarmed"


def test_lost_stuck_and_blocked_jobs_and_slack_failures_are_alarmed() -> None:
    on_metrics = {
        alarm.get("MetricName") for alarm in alarms().values() if alarm.get("Namespace") == {"Ref": "MetricsNamespace"}
    }
    assert on_metrics >= {"LostJobs", "StuckJobs", "QueueBlocked"}
    (slack,) = (alarm for alarm in alarms().values() if "Metrics" in alarm)
    query = resolver().resolve(slack["Metrics"][0]["Expression"])
    assert query == 'SELECT SUM(SlackFailures) FROM SCHEMA("batchdrop", service, team)'


def test_every_alarm_tells_the_alarms_topic_and_may_use_its_key() -> None:
    key_policy = RESOURCES["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = (s for s in key_policy if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"})
    allowed_names = cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].rsplit(":alarm:", 1)[1]
    assert allowed_names == "batchdrop-${Stage}-*"
    for name, alarm in alarms().items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmsTopic"}], name
        assert alarm["AlarmName"]["Fn::Sub"].startswith("batchdrop-${Stage}-"), name
        assert alarm["TreatMissingData"] == "notBreaching", name


def test_dashboard_is_json_and_shows_every_alarm() -> None:
    body = json.loads(resolver().resolve(RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]))
    (alarm_widget,) = (widget for widget in body["widgets"] if widget["type"] == "alarm")
    assert len(alarm_widget["properties"]["alarms"]) == len(alarms())
    searches = [
        metric[0]["expression"]
        for widget in body["widgets"]
        for metric in widget.get("properties", {}).get("metrics", [])
        if isinstance(metric[0], dict)
    ]
    assert any('MetricName="JobsSubmitted"' in search and "queue,service,team" in search for search in searches)
    assert all(search.startswith('SEARCH(\'{"batchdrop",') for search in searches)


# ---------------------------------------------------------------- where the platform config lives


@pytest.mark.parametrize(
    ("parameters", "location"),
    [
        ({}, "s3://batchdrop-jobs-123456789012-us-east-1-dev/config/platform.yaml"),
        ({"PlatformConfigSsmParameter": "/platform/batch"}, "ssm:/platform/batch"),
        ({"CreateBatchEnvironment": "true"}, "ssm:/batchdrop/dev/platform-config"),
    ],
)
def test_functions_read_the_config_where_the_stack_says(parameters: dict[str, str], location: str) -> None:
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert resolver(**parameters).resolve(variables["BATCHDROP_PLATFORM_CONFIG"]) == location
    outputs = TEMPLATE["Outputs"]
    assert resolver(**parameters).resolve(outputs["PlatformConfigLocation"]["Value"]) == location


@pytest.mark.parametrize("made", ["false", "true"])
def test_functions_may_read_the_config_where_it_is_and_nowhere_else(made: str) -> None:
    for name in of_type("AWS::Serverless::Function"):
        role = resolver(CreateBatchEnvironment=made).resolve(RESOURCES[f"{name}Role"]["Properties"])
        sids = {statement["Sid"]: statement for statement in role["Policies"][0]["PolicyDocument"]["Statement"]}
        if name in {"PublishFunction", "ReportFunction"}:  # tell what was recorded: need no platform config
            assert not {"ReadPlatformConfigObject", "ReadPlatformConfigParameter"} & set(sids)
        elif made == "true":
            assert "ReadPlatformConfigObject" not in sids, name
            assert sids["ReadPlatformConfigParameter"]["Resource"].endswith(":parameter/batchdrop/dev/platform-config")
        else:
            assert "ReadPlatformConfigParameter" not in sids, name
            assert sids["ReadPlatformConfigObject"]["Resource"].endswith("-dev/config/platform.yaml")


def test_a_made_batch_environment_is_written_into_a_platform_config_that_loads() -> None:
    properties = resolver(CreateBatchEnvironment="true").resolve(RESOURCES["GeneratedPlatformConfig"]["Properties"])
    assert properties["Name"] == MADE_BATCH["GeneratedPlatformConfig"]
    config = parse_platform_config(properties["Value"].encode(), "platform.yaml")
    assert {name: (queue.arn, queue.hardware, queue.fair_share) for name, queue in config.queues.items()} == {
        "cpu-spot": (MADE_BATCH["CpuJobQueue"], "cpu", True),
        "gpu-spot": (MADE_BATCH["GpuJobQueue"], "gpu", True),
    }
    assert config.queues["gpu-spot"].max_gpus == 8
    assert config.teams["vision"].job_definitions == {"trainer": MADE_BATCH["FirstTeamJobDefinition"]}
    assert config.teams["forecasting"].job_definitions == {"triage": MADE_BATCH["SecondTeamJobDefinition"]}
    assert (config.teams["vision"].share_identifier, config.teams["forecasting"].share_identifier) == (
        "vision",
        "forecast",
    )
    assert [(route.when.hardware, route.queue) for route in config.routes] == [("gpu", "gpu-spot"), ("cpu", "cpu-spot")]


def test_the_made_queues_share_fairly_between_the_teams_and_cancel_what_cannot_start() -> None:
    made = resolver(CreateBatchEnvironment="true")
    shares = made.resolve(RESOURCES["TeamsSchedulingPolicy"]["Properties"])["FairsharePolicy"]["ShareDistribution"]
    assert [share["ShareIdentifier"] for share in shares] == ["vision", "forecast"]
    for queue in ("CpuJobQueue", "GpuJobQueue"):
        properties = RESOURCES[queue]["Properties"]
        assert properties["SchedulingPolicyArn"] == {"Ref": "TeamsSchedulingPolicy"}
        reasons = {action["Reason"] for action in properties["JobStateTimeLimitActions"]}
        assert {"CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"} <= reasons
        assert all(
            action["Action"] == "CANCEL" and action["State"] == "RUNNABLE"
            for action in properties["JobStateTimeLimitActions"]
        )
    gpu = RESOURCES["GpuComputeEnvironment"]["Properties"]["ComputeResources"]
    assert gpu["Ec2Configuration"] == [{"ImageType": "ECS_AL2_NVIDIA"}]
    assert (gpu["Type"], gpu["AllocationStrategy"]) == ("SPOT", "SPOT_CAPACITY_OPTIMIZED")
    minutes = TEMPLATE["Parameters"]["RunnableTimeLimitMinutes"]["AllowedValues"]
    assert {m: TEMPLATE["Mappings"]["RunnableTimeLimit"][m]["Seconds"] for m in minutes} == {
        m: int(m) * 60 for m in minutes
    }


def test_every_made_batch_resource_is_conditional() -> None:
    multinode = {"MultiNodePlacementGroup", "MultiNodeComputeEnvironment", "MultiNodeJobQueue"}
    multinode |= {"FirstTeamMultiNodeJobDefinition"}
    for name, resource in RESOURCES.items():
        if name in multinode:  # only with CreateBatchEnvironment too (the condition says both)
            assert resource.get("Condition") == "CreatesMultiNodeEnvironment", name
        elif resource["Type"].startswith("AWS::Batch::") or name in {"GeneratedPlatformConfig", "BatchLaunchTemplate"}:
            assert resource.get("Condition") == "CreatesBatchEnvironment", name
    assert TEMPLATE["Conditions"]["CreatesMultiNodeEnvironment"]["Fn::And"][0] == {
        "Condition": "CreatesBatchEnvironment"
    }


def test_a_made_multinode_environment_is_on_demand_close_together_and_in_the_platform_config() -> None:
    """docs/multinode.md: Batch runs multi-node jobs on EC2 on-demand only; one subnet and a cluster placement
    group keep the nodes close; the first team gets a multi-node definition of one node range, `0:`; the
    config routes multi-node GPU jobs to its queue (the GPU route's on-demand fallback)."""
    made = resolver(CreateBatchEnvironment="true", CreateMultiNodeEnvironment="true", BatchSubnetIds=["a", "b"])
    resources = made.resolve(RESOURCES["MultiNodeComputeEnvironment"]["Properties"])["ComputeResources"]
    assert (resources["Type"], resources["Subnets"], resources["PlacementGroup"]) == (
        "EC2",
        ["a"],
        "MultiNodePlacementGroup",
    )
    assert RESOURCES["MultiNodePlacementGroup"]["Properties"] == {"Strategy": "cluster"}
    definition = made.resolve(RESOURCES["FirstTeamMultiNodeJobDefinition"]["Properties"])
    assert definition["Type"] == "multinode"
    [node_range] = definition["NodeProperties"]["NodeRangeProperties"]
    assert node_range["TargetNodes"] == "0:"
    assert node_range["Container"]["JobRoleArn"] == "FirstTeamJobRole.Arn"
    assert node_range["Container"]["Privileged"] is False
    value = made.resolve(RESOURCES["GeneratedPlatformConfig"]["Properties"])["Value"]
    config = parse_platform_config(value.encode(), "platform.yaml")
    queue = config.queues["gpu-multinode"]
    assert (queue.arn, queue.capacity, queue.max_environment_vcpus) == (
        MADE_BATCH["MultiNodeJobQueue"],
        "on_demand",
        192,
    )
    assert config.teams["vision"].multinode_job_definitions == ["ddp"]
    assert config.teams["vision"].job_definitions["ddp"] == MADE_BATCH["FirstTeamMultiNodeJobDefinition"]
    assert [(route.queue, route.fallback) for route in config.routes] == [
        ("gpu-spot", "gpu-multinode"),
        ("cpu-spot", None),
    ]
    role = made.resolve(RESOURCES["SubmitFunctionRole"]["Properties"])
    (submit,) = (s for s in role["Policies"][0]["PolicyDocument"]["Statement"] if s["Action"] == "batch:SubmitJob")
    assert MADE_BATCH["MultiNodeJobQueue"] in submit["Resource"]
    assert MADE_BATCH["FirstTeamMultiNodeJobDefinition"] in submit["Resource"]


def test_an_event_that_beats_its_jobs_record_is_retried_soon_yet_outlives_a_crashed_submit() -> None:
    tracking = RESOURCES["TrackingQueue"]["Properties"]
    intake_visibility = RESOURCES["IntakeQueue"]["Properties"]["VisibilityTimeout"]
    first = TrackSettings.model_fields["unrecorded_retry_seconds"].default
    delays = [retry_delay_seconds(receive, first) for receive in range(1, tracking["RedrivePolicy"]["maxReceiveCount"])]
    assert delays[:4] == [10, 30, 90, 270], "the first retry within seconds, not after the visibility timeout"
    assert max(delays) < tracking["VisibilityTimeout"], "never later than SQS alone would bring it back"
    assert sum(delays) > intake_visibility, "its receives outlast a crashed submit's retry, which writes the record"
    track = RESOURCES["TrackFunction"]["Properties"]
    assert track["Environment"]["Variables"]["TRACKING_QUEUE_URL"] == {"Ref": "TrackingQueue"}


def test_job_containers_cannot_reach_the_instance_role() -> None:
    """IMDSv2 only, and its answer dies after one hop: a container behind the host's bridge cannot read it.

    A job must act as the role its job definition gives it (through the ECS credentials endpoint), never as
    the instance role that every team's containers on a shared instance would otherwise share.
    """
    (launch_template,) = of_type("AWS::EC2::LaunchTemplate").values()
    options = launch_template["Properties"]["LaunchTemplateData"]["MetadataOptions"]
    assert options["HttpTokens"] == "required"
    assert options["HttpPutResponseHopLimit"] == 1
    for environment in of_type("AWS::Batch::ComputeEnvironment").values():
        used = environment["Properties"]["ComputeResources"]["LaunchTemplate"]["LaunchTemplateId"]
        assert used == {"Ref": "BatchLaunchTemplate"}, "every made environment launches with these options"


# ---------------------------------------------------------------- recovery's hand-over (docs/recovery.md)


def _statements_of(role: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in RESOURCES[role]["Properties"]["Policies"]
        for statement in statements(policy["PolicyDocument"])
    ]


def test_the_submit_function_reads_recoveries_from_the_stream_as_the_publish_function_reads_the_outbox() -> None:
    recoveries = RESOURCES["SubmitFunction"]["Properties"]["Events"]["Recoveries"]
    outbox = RESOURCES["PublishFunction"]["Properties"]["Events"]["Outbox"]["Properties"]
    assert recoveries["Type"] == "DynamoDB"
    source = recoveries["Properties"]
    assert source["Stream"] == outbox["Stream"] == {"Fn::GetAtt": ["RecordsTable", "StreamArn"]}
    for setting in (
        "StartingPosition",
        "FunctionResponseTypes",
        "BisectBatchOnFunctionError",
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "ParallelizationFactor",
    ):
        assert source[setting] == outbox[setting], setting
    assert source["BatchSize"] <= 10, "each record may submit a few jobs"
    granted = {
        action
        for statement in _statements_of("SubmitFunctionRole")
        if statement["Resource"] == {"Fn::GetAtt": ["RecordsTable", "StreamArn"]}
        for action in as_list(statement["Action"])
    }
    assert granted == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }


def test_only_job_records_that_just_gained_a_recovery_reach_the_submit_function() -> None:
    filters = RESOURCES["SubmitFunction"]["Properties"]["Events"]["Recoveries"]["Properties"]["FilterCriteria"][
        "Filters"
    ]
    due = {"M": {"number": {"N": "1"}, "kind": {"S": "out_of_memory"}}}
    job, run = {"kind": {"S": "job"}}, {"kind": {"S": "run"}}

    def change(new: dict[str, Any] | None, old: dict[str, Any] | None = None) -> dict[str, Any]:
        images = {"NewImage": new} if new is not None else {}
        return {"eventSource": "aws:dynamodb", "dynamodb": images | ({"OldImage": old} if old is not None else {})}

    assert matches(change({**job, "recovery": due}, job), filters), "tracking's decision, with FAILED"
    assert not matches(change({**job, "recovery": due, "recovered_by": {"S": "j2"}}, {**job, "recovery": due}), filters)
    assert not matches(change(job, job), filters), "any other change of a job"
    assert not matches(change({**run, "recovery": due}), filters), "a run is never a recovery"
    assert not matches(change(None, {**job, "recovery": due}), filters), "a job's record expiring"


def test_a_submit_claims_lease_outlives_its_holder_and_ends_before_its_message_can_come_back() -> None:
    """Its own message younger than the lease may be a second copy delivered at once (handed back); older,
    a redelivery after its holder failed (resumed): the holder is gone by the function's timeout, and SQS
    returns a message no sooner than the intake queue's visibility timeout."""
    submit = RESOURCES["SubmitFunction"]["Properties"]
    lease = int(submit["Environment"]["Variables"]["CLAIM_LEASE_SECONDS"])
    timeout = submit.get("Timeout") or TEMPLATE["Globals"]["Function"]["Timeout"]
    assert timeout < lease < RESOURCES["IntakeQueue"]["Properties"]["VisibilityTimeout"]
    assert lease < int(submit["Environment"]["Variables"]["STALE_CLAIM_SECONDS"])


def test_the_submit_function_may_list_its_bucket_so_a_deleted_spec_is_told_deleted() -> None:
    """S3 answers a GetObject of a missing key 404 only to a caller that may list the bucket (403 otherwise):
    a spec deleted before it is read is then rejected as deleted, not retried into the dead-letter queue."""
    (listing,) = (s for s in _statements_of("SubmitFunctionRole") if "s3:ListBucket" in as_list(s["Action"]))
    assert listing["Resource"]["Fn::Sub"].endswith("-${Stage}"), "the jobs bucket itself, not its objects"
