import { type Logger, LoupeError } from '@loupe/common';
import { type ArgumentsHost, Catch, type HttpServer } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { GqlContextType, GqlExceptionFilter } from '@nestjs/graphql';
import { GraphQLError } from 'graphql';

/**
 * Errors thrown in resolvers go straight to Apollo (whose formatError gives clients their codes and
 * logs bugs in full). Without this filter Nest logs every one of them, a user's typo included, as a red
 * `ERROR [ExceptionsHandler]` with a stack trace; here a user's mistake is one info line.
 */
@Catch()
export class ResolverErrorsFilter extends BaseExceptionFilter implements GqlExceptionFilter {
  constructor(
    private readonly log: Logger,
    http: HttpServer,
  ) {
    super(http);
  }

  override catch(exception: unknown, host: ArgumentsHost): unknown {
    // plain HTTP routes keep Nest's own handling
    if (host.getType<GqlContextType>() !== 'graphql') return super.catch(exception, host);
    if (exception instanceof LoupeError || exception instanceof GraphQLError) {
      const code = exception instanceof LoupeError ? exception.code : exception.extensions?.code;
      this.log.info({ code, message: exception.message }, 'request refused');
    }
    return exception;
  }
}
