import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { required } from './aws-environment.ts';
import type { PlanEvent } from './environment.ts';

let lambda: LambdaClient | undefined;

/**
 * Continues a plan in a fresh invocation of this function (AWS_LAMBDA_FUNCTION_NAME). Its own
 * module: the plan function alone bundles the Lambda client, the export functions do without it.
 */
export async function continueInFreshInvocation(event: PlanEvent): Promise<void> {
  lambda ??= new LambdaClient({});
  await lambda.send(
    new InvokeCommand({
      FunctionName: required('AWS_LAMBDA_FUNCTION_NAME'),
      InvocationType: 'Event',
      Payload: Buffer.from(JSON.stringify(event)),
    }),
  );
}
