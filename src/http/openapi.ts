import { z } from 'zod';
import type { AnyRoute } from './route';

type JsonObject = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonObject;
  delete out.$schema;
  return out;
}

function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z_]+)/g, '{$1}');
}

function pathParameters(route: AnyRoute): JsonObject[] {
  return [...route.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
}

function queryParameters(route: AnyRoute): JsonObject[] {
  if (!route.query) return [];
  const schema = jsonSchema(route.query as z.ZodType, 'input');
  const properties = (schema.properties ?? {}) as Record<string, JsonObject>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    schema: property,
  }));
}

/** FHIR's `_format` (https://hl7.org/fhir/R4/http.html#parameters), which every FHIR route reads before `Accept`. */
const FORMAT_PARAMETER: JsonObject = {
  name: '_format',
  in: 'query',
  required: false,
  description: 'json, application/json or application/fhir+json (with fhirVersion 4.0 at most); anything else is a 406. Wins over Accept.',
  schema: { type: 'string' },
};

/**
 * Whether a JSON body is required (OpenAPI `requestBody.required`): not when the schema takes the
 * empty object, which is what a POST sent without a body is judged as (app.ts): a bare
 * `POST …/bundle/rebuild` or `…/pulls` is a request the API accepts.
 * @see https://spec.openapis.org/oas/v3.1.0#request-body-object
 */
function bodyRequired(body: z.ZodType): boolean {
  try {
    return !body.safeParse({}).success;
  } catch {
    // A schema that cannot be judged synchronously (an async refinement): documented as required.
    return true;
  }
}

/** Where a route's 400 comes from: the request parts it has a schema for, each bad field named. */
function badRequestDescription(route: AnyRoute): string | undefined {
  const parts = [route.params ? 'path parameter' : undefined, route.query ? 'query parameter' : undefined, route.body ? 'body' : undefined].filter(
    (part): part is string => part !== undefined,
  );
  if (parts.length === 0) return undefined;
  const named = route.fhir === true ? 'an OperationOutcome issue per bad field (`location` http.<name> for a parameter)' : 'each bad field named in `errors[]` (`params.<name>`, `query.<name>`, or the body member)';
  return `Invalid ${parts.join(', ')}: ${named}`;
}

/** OpenAPI 3.1 document generated from the route definitions and their zod schemas. */
export function buildOpenApi(routes: readonly AnyRoute[], version: string): JsonObject {
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const route of routes) {
    const responses: JsonObject = {};
    for (const [status, spec] of Object.entries(route.responses)) {
      responses[status] = {
        description: spec.description,
        ...(spec.schema || spec.contentType
          ? { content: { [spec.contentType ?? 'application/json']: spec.schema ? { schema: jsonSchema(spec.schema, 'output') } : {} } }
          : {}),
      };
    }
    // FHIR routes answer their errors as an OperationOutcome.
    const errorBody = { content: { [route.fhir === true ? 'application/fhir+json' : 'application/problem+json']: {} } };
    if (route.roles !== 'public') {
      responses['401'] = { description: 'Missing or invalid bearer token', ...errorBody };
      responses['403'] = { description: `Needs one of the roles: ${route.roles.join(', ')}`, ...errorBody };
    }
    // Every route with a params, query or body schema answers 400 when one of them refuses the request.
    const badRequest = badRequestDescription(route);
    if (badRequest) responses['400'] ??= { description: badRequest, ...errorBody };
    if (route.fhir === true) {
      responses['406'] ??= { description: 'Accept or _format asks for something other than FHIR R4 JSON', ...errorBody };
    }
    const operation: JsonObject = {
      summary: route.summary,
      tags: [route.tag],
      parameters: [...pathParameters(route), ...queryParameters(route), ...(route.fhir === true ? [FORMAT_PARAMETER] : [])],
      responses,
      ...(route.roles === 'public' ? { security: [] } : { 'x-roles': route.roles }),
      ...(route.body
        ? { requestBody: { required: bodyRequired(route.body as z.ZodType), content: { 'application/json': { schema: jsonSchema(route.body as z.ZodType, 'input') } } } }
        : route.streamBody
          ? { requestBody: { required: true, description: route.streamBody.description, content: { [route.streamBody.contentType]: {} } } }
          : {}),
      ...(route.scopedToken ? { 'x-scoped-token': true } : {}),
    };
    const key = openApiPath(route.path);
    paths[key] = { ...(paths[key] ?? {}), [route.method]: operation };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Second Opinion Bridge API',
      version,
      description: 'Case intake, record pulls from local care teams (FHIR R4), review and delivery of second opinions.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
