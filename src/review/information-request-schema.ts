/**
 * Bodies of `POST /api/cases/:id/information-requests` and of their answer.
 * @packageDocumentation
 */
import { z } from 'zod';
import { AddOnCodeSchema } from '../cases/prices';
import { PULL_RESOURCE_TYPES } from '../pull/pull-plan';

const Message = (required: boolean) => {
  const text = z
    .string({ error: 'message must be text' })
    .trim()
    .min(1, { error: 'message must not be empty' })
    .max(2000, { error: 'message must be at most 2000 characters' });
  return required ? text : text.optional();
};

/** What the specialist asks for. */
export const InformationRequestBody = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('re-pull'),
      resourceTypes: z
        .array(z.enum(PULL_RESOURCE_TYPES, { error: `resourceTypes must be among ${PULL_RESOURCE_TYPES.join(', ')}` }))
        .min(1, { error: 'resourceTypes needs at least one resource type' }),
      message: Message(false),
    }),
    z.strictObject({ kind: z.literal('family-upload'), message: Message(true) }),
    z.strictObject({ kind: z.literal('expert-input'), addOn: AddOnCodeSchema, message: Message(false) }),
  ],
  { error: 'kind must be re-pull, family-upload or expert-input' },
);
/** A validated information request. */
export type InformationRequestBody = z.infer<typeof InformationRequestBody>;

/** The case manager's answer. */
export const InformationAnswerBody = z.strictObject({
  answer: z
    .string({ error: 'answer must say what was received' })
    .trim()
    .min(1, { error: 'answer must not be empty' })
    .max(2000, { error: 'answer must be at most 2000 characters' }),
});
/** A validated answer. */
export type InformationAnswerBody = z.infer<typeof InformationAnswerBody>;
