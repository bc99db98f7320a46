// The offline template validator (test/support/cfn-validate.ts): each check catches the broken
// template it exists for, and a correct one passes.
import { loadAwsServiceSpec } from '@aws-cdk/aws-service-spec';
import type { SpecDatabase } from '@aws-cdk/service-spec-types';
import { validateTemplate, type CfnTemplate } from '../../support/cfn-validate.js';

let db: SpecDatabase;
beforeAll(async () => {
  db = await loadAwsServiceSpec();
}, 60_000);

/** A small valid template: a queue, a topic, and an alarm on the queue that publishes to the topic. */
function template(): CfnTemplate {
  return {
    Parameters: { Stage: { Type: 'String' } },
    Conditions: { IsProd: { 'Fn::Equals': [{ Ref: 'Stage' }, 'prod'] }, Never: { 'Fn::Equals': ['', 'x'] } },
    Resources: {
      Queue: { Type: 'AWS::SQS::Queue', Properties: { VisibilityTimeout: 60, SqsManagedSseEnabled: true } },
      Topic: { Type: 'AWS::SNS::Topic', Properties: { DisplayName: { 'Fn::Sub': 'alerts ${Stage} ${AWS::Region}' } } },
      Alarm: {
        Type: 'AWS::CloudWatch::Alarm',
        Properties: {
          Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Statistic: 'Maximum', Period: 300,
          Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['Queue', 'QueueName'] } }],
          EvaluationPeriods: 1, Threshold: 0, ComparisonOperator: 'GreaterThanThreshold',
          AlarmActions: [{ Ref: 'Topic' }],
        },
      },
    },
    Outputs: { QueueUrl: { Value: { Ref: 'Queue' } } },
  };
}

const messages = (t: CfnTemplate) => validateTemplate(db, t).map((p) => `${p.path}: ${p.message}`);

describe('validateTemplate', () => {
  it('passes a correct template', () => {
    expect(messages(template())).toEqual([]);
  });

  it('catches an unknown resource type', () => {
    const t = template();
    t.Resources['Queue']!.Type = 'AWS::SQS::Queues';
    expect(messages(t)).toEqual(['Queue: unknown resource type AWS::SQS::Queues']);
  });

  it('catches a misspelt property, at the top and nested', () => {
    const t = template();
    (t.Resources['Queue']!.Properties as Record<string, unknown>)['VisibilityTimout'] = 60;
    ((t.Resources['Alarm']!.Properties as Record<string, unknown[]>)['Dimensions']![0] as Record<string, unknown>)['Nmae'] = 'x';
    const found = messages(t);
    expect(found).toEqual(expect.arrayContaining([
      expect.stringMatching(/^Queue\.VisibilityTimout: unknown property VisibilityTimout/),
      expect.stringMatching(/^Alarm\.Dimensions\[0\]\.Nmae: unknown property Nmae/),
    ]));
  });

  it('catches a missing required property, at the top and nested', () => {
    const t = template();
    t.Resources['Subscription'] = { Type: 'AWS::SNS::Subscription', Properties: { Protocol: 'email' } };
    delete ((t.Resources['Alarm']!.Properties as Record<string, unknown[]>)['Dimensions']![0] as Record<string, unknown>)['Value'];
    expect(messages(t).sort()).toEqual([
      'Alarm.Dimensions[0]: required property Value is missing',
      'Subscription: required property TopicArn is missing',
    ]);
  });

  it('catches a literal of the wrong type, but not in a branch its condition switches off', () => {
    const t = template();
    (t.Resources['Queue']!.Properties as Record<string, unknown>)['VisibilityTimeout'] = 'a minute';
    (t.Resources['Alarm']!.Properties as Record<string, unknown>)['Threshold'] = { 'Fn::If': ['Never', '', 0] };
    (t.Resources['Alarm']!.Properties as Record<string, unknown>)['EvaluationPeriods'] = { 'Fn::If': ['IsProd', 'x', 1] };
    // IsProd depends on a parameter: both branches count. Never is false: its branch does not.
    expect(messages(t).sort()).toEqual([
      'Alarm.EvaluationPeriods: expected a number, got "x"',
      'Queue.VisibilityTimeout: expected a number, got "a minute"',
    ]);
  });

  it('catches a Fn::GetAtt of an attribute the type does not have, or of no resource', () => {
    const t = template();
    (t.Resources['Alarm']!.Properties as Record<string, unknown>)['Dimensions'] = [
      { Name: 'QueueName', Value: { 'Fn::GetAtt': ['Queue', 'Name'] } },
      { Name: 'Other', Value: { 'Fn::GetAtt': ['Nowhere', 'Arn'] } },
    ];
    const found = messages(t);
    expect(found).toContainEqual(expect.stringMatching(/Fn::GetAtt Queue\.Name: AWS::SQS::Queue has no attribute Name \(it has: .*QueueName/));
    expect(found).toContainEqual(expect.stringMatching(/Fn::GetAtt Nowhere\.Arn: no such resource/));
  });

  it('catches a dangling Ref, Fn::Sub reference, DependsOn and condition', () => {
    const t = template();
    (t.Resources['Alarm']!.Properties as Record<string, unknown>)['AlarmActions'] = [{ Ref: 'Topik' }];
    (t.Resources['Topic']!.Properties as Record<string, unknown>)['DisplayName'] = { 'Fn::Sub': 'alerts ${Stag} ${!Literal} ${Queue.Arnn}' };
    t.Resources['Queue']!.DependsOn = ['Missing'];
    t.Resources['Topic']!.Condition = 'IsProduction';
    t.Outputs = { Url: { Value: { Ref: 'Queu' } } };
    const found = messages(t);
    expect(found).toHaveLength(6);
    expect(found).toEqual(expect.arrayContaining([
      'Alarm.AlarmActions[0]: Ref Topik: no such resource, parameter or pseudo parameter',
      'Outputs.Url.Value: Ref Queu: no such resource, parameter or pseudo parameter',
      'Queue: DependsOn Missing: no such resource',
      expect.stringMatching(/^Topic\.DisplayName: Fn::GetAtt Queue\.Arnn: AWS::SQS::Queue has no attribute Arnn/),
      'Topic.DisplayName: Fn::Sub ${} Stag: no such resource, parameter or pseudo parameter',
      'Topic: condition IsProduction: not defined in Conditions',
    ]));
  });

  it('catches a reference cycle (through Ref, GetAtt, Sub or DependsOn)', () => {
    const t = template();
    (t.Resources['Queue']!.Properties as Record<string, unknown>)['RedrivePolicy'] = { deadLetterTargetArn: { 'Fn::Sub': '${Topic}' } };
    t.Resources['Topic']!.DependsOn = 'Queue';
    expect(messages(t)).toEqual([expect.stringMatching(/circular dependency: (Queue -> Topic -> Queue|Topic -> Queue -> Topic)$/)]);
  });
});
