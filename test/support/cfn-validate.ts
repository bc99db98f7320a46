// Validates a CloudFormation template offline against the resource schemas of
// @aws-cdk/aws-service-spec (the CloudFormation registry's, as the CDK ships them): what would
// otherwise fail only at deploy time. Checks, for every resource: the type exists; every property
// name exists in its schema (nested types too); required properties are present; literal values
// have the right primitive type; Fn::GetAtt names an attribute the target's type has; every Ref,
// Fn::Sub ${} and Fn::GetAtt target is a resource, a parameter or a pseudo parameter; DependsOn,
// Condition and Fn::If name things that exist; resources do not reference each other in a cycle.
import type { SpecDatabase } from '@aws-cdk/service-spec-types';

interface SchemaType {
  type: 'string' | 'number' | 'integer' | 'boolean' | 'json' | 'date-time' | 'null' | 'tag' | 'ref' | 'array' | 'map' | 'union';
  reference?: { $ref: string };
  element?: SchemaType;
  types?: SchemaType[];
}
interface SchemaProperty { type: SchemaType; required?: boolean }
interface SchemaResource { properties: Record<string, SchemaProperty>; attributes: Record<string, unknown> }

export interface CfnTemplate {
  Parameters?: Record<string, unknown>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, { Type: string; Properties?: unknown; DependsOn?: string | string[]; Condition?: string; [key: string]: unknown }>;
  Outputs?: Record<string, unknown>;
}

export interface CfnProblem {
  /** Logical id of the resource (or `Outputs.X`), then the property path. */
  path: string;
  message: string;
}

const PSEUDO = new Set([
  'AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region',
  'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix',
]);

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const intrinsicName = (v: Json): string | undefined => {
  if (!isObject(v)) return undefined;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::') || keys[0] === 'Condition') ? keys[0] : undefined;
};

/** The `${Name}` and `${Name.Attr}` references of a Fn::Sub string (`${!Literal}` is not one). */
export function subReferences(text: string): string[] {
  return [...text.matchAll(/\$\{([^}!][^}]*)\}/g)].map((m) => m[1]!.trim());
}

class Validator {
  readonly problems: CfnProblem[] = [];
  /** Resource -> resources it references (for the cycle check). */
  private readonly edges = new Map<string, Set<string>>();
  /**
   * Whether literal values are type-checked here. Not inside what CloudFormation never evaluates
   * with the template's parameters (a resource or Fn::If branch under a condition known to be
   * false): an off feature's empty settings are no error; its property names still are.
   */
  private literals = true;

  constructor(private readonly db: SpecDatabase, private readonly template: CfnTemplate) {}

  private problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  private schemaOf(cfnType: string): SchemaResource | undefined {
    const found = this.db.lookup('resource', 'cloudFormationType', 'equals', cfnType);
    return found[0];
  }

  private typeDefinition(ref: { $ref: string }): Record<string, SchemaProperty> {
    return (this.db.get('typeDefinition', ref.$ref) as unknown as { properties: Record<string, SchemaProperty> }).properties;
  }

  run(): CfnProblem[] {
    const resources = this.template.Resources ?? {};
    for (const [id, resource] of Object.entries(resources)) {
      this.edges.set(id, new Set());
      if (resource.Condition !== undefined) this.condition(id, resource.Condition);
      for (const dep of [resource.DependsOn ?? []].flat()) {
        if (!(dep in resources)) this.problem(id, `DependsOn ${dep}: no such resource`);
        else this.edges.get(id)!.add(dep);
      }
      const schema = resource.Type.startsWith('Custom::') ? undefined : this.schemaOf(resource.Type);
      if (!schema) {
        if (!resource.Type.startsWith('Custom::')) this.problem(id, `unknown resource type ${resource.Type}`);
        this.references(id, id, resource.Properties);
        continue;
      }
      const props = resource.Properties ?? {};
      this.unevaluatedIf(resource.Condition !== undefined && this.conditionValue(resource.Condition) === false, () => this.object(id, id, props, schema.properties));
    }
    for (const [name, output] of Object.entries(this.template.Outputs ?? {})) this.references(undefined, `Outputs.${name}`, output);
    this.cycles();
    return this.problems;
  }

  private unevaluatedIf(skip: boolean, check: () => void): void {
    const before = this.literals;
    if (skip) this.literals = false;
    try {
      check();
    } finally {
      this.literals = before;
    }
  }

  /** A condition's value when the template fixes it (literal Fn::Equals, Not, And, Or); else undefined. */
  private conditionValue(name: string, seen = new Set<string>()): boolean | undefined {
    if (seen.has(name)) return undefined;
    seen.add(name);
    const evaluate = (v: Json): boolean | undefined => {
      if (!isObject(v)) return undefined;
      if (typeof v['Condition'] === 'string') return this.conditionValue(v['Condition'], seen);
      const args = Object.values(v)[0] as Json[];
      if ('Fn::Equals' in v) {
        const [a, b] = args;
        return (typeof a === 'string' || typeof a === 'number' || typeof a === 'boolean') && (typeof b === 'string' || typeof b === 'number' || typeof b === 'boolean')
          ? String(a) === String(b) : undefined;
      }
      const values = args.map(evaluate);
      if ('Fn::Not' in v) return values[0] === undefined ? undefined : !values[0];
      if ('Fn::And' in v) return values.includes(false) ? false : values.includes(undefined) ? undefined : true;
      if ('Fn::Or' in v) return values.includes(true) ? true : values.includes(undefined) ? undefined : false;
      return undefined;
    };
    return evaluate(this.template.Conditions?.[name]);
  }

  private condition(path: string, name: string): void {
    if (!(name in (this.template.Conditions ?? {}))) this.problem(path, `condition ${name}: not defined in Conditions`);
  }

  /** Checks an object value against a property map (a resource's, or a nested type's). */
  private object(owner: string, path: string, value: Json, schema: Record<string, SchemaProperty>): void {
    if (intrinsicName(value) !== undefined) {
      this.intrinsic(owner, path, value as Record<string, Json>, (branch, at) => this.object(owner, at, branch, schema));
      return;
    }
    if (!isObject(value)) {
      this.problem(path, `expected an object, got ${JSON.stringify(value)}`);
      return;
    }
    for (const [name, v] of Object.entries(value)) {
      const prop = schema[name];
      if (!prop) {
        this.problem(`${path}.${name}`, `unknown property ${name} (known: ${Object.keys(schema).sort().join(', ')})`);
        this.references(owner, `${path}.${name}`, v);
        continue;
      }
      this.value(owner, `${path}.${name}`, v, prop.type);
    }
    for (const [name, prop] of Object.entries(schema)) {
      if (prop.required && !(name in value)) this.problem(path, `required property ${name} is missing`);
    }
  }

  private value(owner: string, path: string, value: Json, type: SchemaType): void {
    if (intrinsicName(value) !== undefined) {
      this.intrinsic(owner, path, value as Record<string, Json>, (branch, at) => this.value(owner, at, branch, type));
      return;
    }
    switch (type.type) {
      case 'json':
        this.references(owner, path, value);
        return;
      case 'string':
      case 'date-time':
        if (this.literals && !['string', 'number', 'boolean'].includes(typeof value)) this.problem(path, `expected a string, got ${JSON.stringify(value)}`);
        return;
      case 'number':
      case 'integer':
        if (!this.literals) return;
        if (!(typeof value === 'number' || (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))))) {
          this.problem(path, `expected a number, got ${JSON.stringify(value)}`);
        } else if (type.type === 'integer' && !Number.isInteger(Number(value))) {
          this.problem(path, `expected an integer, got ${JSON.stringify(value)}`);
        }
        return;
      case 'boolean':
        if (this.literals && !(typeof value === 'boolean' || value === 'true' || value === 'false')) this.problem(path, `expected a boolean, got ${JSON.stringify(value)}`);
        return;
      case 'null':
        return;
      case 'tag':
        this.object(owner, path, value, { Key: { type: { type: 'string' }, required: true }, Value: { type: { type: 'string' }, required: true } });
        return;
      case 'ref':
        this.object(owner, path, value, this.typeDefinition(type.reference!));
        return;
      case 'array':
        if (!Array.isArray(value)) {
          this.problem(path, `expected a list, got ${JSON.stringify(value)}`);
          return;
        }
        value.forEach((item, i) => this.value(owner, `${path}[${i}]`, item, type.element!));
        return;
      case 'map':
        if (!isObject(value)) {
          this.problem(path, `expected a map, got ${JSON.stringify(value)}`);
          return;
        }
        for (const [k, v] of Object.entries(value)) this.value(owner, `${path}.${k}`, v, type.element!);
        return;
      case 'union': {
        // The first alternative under which the value has no problem; else the first's problems.
        const attempts = type.types!.map((t) => {
          const sub = new Validator(this.db, this.template);
          sub.literals = this.literals;
          sub.value(owner, path, value, t);
          return sub;
        });
        const fit = attempts.find((a) => a.problems.length === 0) ?? attempts[0]!;
        this.problems.push(...fit.problems);
        for (const [from, to] of fit.edges) for (const t of to) this.edge(from, t);
        return;
      }
    }
  }

  private edge(from: string | undefined, to: string): void {
    if (from === undefined) return;
    if (!this.edges.has(from)) this.edges.set(from, new Set());
    this.edges.get(from)!.add(to);
  }

  private target(owner: string | undefined, path: string, name: string, what: string): void {
    if (PSEUDO.has(name) || name in (this.template.Parameters ?? {})) return;
    if (name in this.template.Resources) this.edge(owner, name);
    else this.problem(path, `${what} ${name}: no such resource, parameter or pseudo parameter`);
  }

  private getAtt(owner: string | undefined, path: string, resource: string, attribute: string): void {
    const target = this.template.Resources[resource];
    if (!target) {
      this.problem(path, `Fn::GetAtt ${resource}.${attribute}: no such resource`);
      return;
    }
    this.edge(owner, resource);
    const schema = target.Type.startsWith('Custom::') ? undefined : this.schemaOf(target.Type);
    if (schema && !(attribute in schema.attributes)) {
      this.problem(path, `Fn::GetAtt ${resource}.${attribute}: ${target.Type} has no attribute ${attribute} (it has: ${Object.keys(schema.attributes).sort().join(', ')})`);
    }
  }

  /**
   * An intrinsic function: its references are checked; `typed` checks what it evaluates to, where
   * that is known (each branch of Fn::If); other functions' results are not type-checked.
   */
  private intrinsic(owner: string | undefined, path: string, value: Record<string, Json>, typed?: (branch: Json, at: string) => void): void {
    const [name, arg] = Object.entries(value)[0]!;
    switch (name) {
      case 'Ref':
        if (typeof arg !== 'string') this.problem(path, `Ref needs a name, got ${JSON.stringify(arg)}`);
        else this.target(owner, path, arg, 'Ref');
        return;
      case 'Fn::GetAtt': {
        const [resource, attribute] = typeof arg === 'string' ? [arg.slice(0, arg.indexOf('.')), arg.slice(arg.indexOf('.') + 1)] : (arg as [string, string]);
        this.getAtt(owner, path, resource, attribute);
        return;
      }
      case 'Fn::Sub': {
        const [text, vars] = typeof arg === 'string' ? [arg, {}] : (arg as [string, Record<string, Json>]);
        for (const v of Object.values(vars)) this.references(owner, path, v);
        for (const ref of subReferences(text)) {
          if (ref in vars) continue;
          const dot = ref.indexOf('.');
          if (dot > 0 && !ref.startsWith('AWS::')) this.getAtt(owner, path, ref.slice(0, dot), ref.slice(dot + 1));
          else this.target(owner, path, ref, 'Fn::Sub ${}');
        }
        return;
      }
      case 'Fn::If': {
        const [condition, yes, no] = arg as [string, Json, Json];
        this.condition(path, condition);
        const taken = this.conditionValue(condition);
        [yes, no].forEach((branch, i) => {
          const noValue = isObject(branch) && branch['Ref'] === 'AWS::NoValue';
          if (!typed || noValue) this.references(owner, path, branch);
          else this.unevaluatedIf(taken === (i === 1), () => typed(branch, path));
        });
        return;
      }
      default:
        this.references(owner, path, arg);
    }
  }

  /** Walks any value for intrinsic functions and checks what they reference. */
  private references(owner: string | undefined, path: string, value: Json): void {
    if (Array.isArray(value)) {
      value.forEach((v, i) => this.references(owner, `${path}[${i}]`, v));
    } else if (intrinsicName(value) !== undefined && intrinsicName(value) !== 'Condition') {
      this.intrinsic(owner, path, value as Record<string, Json>);
    } else if (isObject(value)) {
      for (const [k, v] of Object.entries(value)) this.references(owner, `${path}.${k}`, v);
    }
  }

  /** Depth-first search over Ref / GetAtt / Sub / DependsOn edges; reports each cycle once. */
  private cycles(): void {
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (node: string): void => {
      state.set(node, 'open');
      stack.push(node);
      for (const next of this.edges.get(node) ?? []) {
        if (state.get(next) === 'open') {
          const cycle = [...stack.slice(stack.indexOf(next)), next];
          this.problem(next, `circular dependency: ${cycle.join(' -> ')}`);
        } else if (state.get(next) === undefined) {
          visit(next);
        }
      }
      stack.pop();
      state.set(node, 'done');
    };
    for (const node of Object.keys(this.template.Resources)) if (!state.has(node)) visit(node);
  }
}

/** Every problem found in `template`; an empty list means it passed every check. */
export function validateTemplate(db: SpecDatabase, template: CfnTemplate): CfnProblem[] {
  return new Validator(db, template).run();
}
