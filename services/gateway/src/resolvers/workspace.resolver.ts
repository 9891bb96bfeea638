import { type LoupeConfig, readWorkspace, type WorkspaceState, workspaceFile } from '@loupe/common';
import { Inject } from '@nestjs/common';
import { Context, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import type { GatewayContext } from '../graphql/context.js';
import { CONFIG } from '../tokens.js';
import { saeView } from './sae-views.js';

/**
 * The first-run demo workspace, from the file `loupe serve` keeps in the data directory (written
 * atomically, so a read never sees half of it). The gateway owns no data; this is a status file.
 */
@Resolver('Workspace')
export class WorkspaceResolvers {
  constructor(@Inject(CONFIG) private readonly config: LoupeConfig) {}

  @Query('workspace')
  workspace(): Promise<WorkspaceState | null> {
    return readWorkspace(workspaceFile(this.config.dataDir));
  }

  @ResolveField('sae')
  async sae(@Parent() workspace: WorkspaceState, @Context() ctx: GatewayContext) {
    return workspace.saeId ? saeView(await ctx.loaders.sae.load(workspace.saeId)) : null;
  }
}
