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

/** OpenAPI 3.1 document generated from the route definitions and their zod schemas. */
/** FHIR's `_format` (https://hl7.org/fhir/R4/http.html#parameters), which every FHIR route reads before `Accept`. */
const FORMAT_PARAMETER: JsonObject = {
  name: '_format',
  in: 'query',
  required: false,
  description: 'json, application/json or application/fhir+json (with fhirVersion 4.0 at most); anything else is a 406. Wins over Accept.',
  schema: { type: 'string' },
};

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
    if (route.body) responses['400'] ??= { description: 'Invalid body; each bad field is named', ...errorBody };
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
        ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body as z.ZodType, 'input') } } } }
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
