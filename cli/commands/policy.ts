import { builtinModules } from 'node:module';
import type { Command } from 'commander';
import { AirlockError } from '../../shared/errors/index.js';
import { act, type Context, common, list } from '../main.js';

const PACKAGE = /^(@[a-z0-9][a-z0-9._-]*\/(\*|[a-z0-9][a-z0-9._-]*)|[a-z0-9][a-z0-9._-]*)$/;
const BUILTINS = new Set(builtinModules.map((m) => m.replace(/^node:/, '')));

function packageName(name: string): string {
  if (!PACKAGE.test(name) || name.length > 214) {
    throw new AirlockError('USAGE', `'${name}' is not an npm package name (e.g. left-pad, @acme/http, @acme/*)`);
  }
  return name;
}

function builtinName(name: string): string {
  const bare = name.replace(/^node:/, '');
  if (!BUILTINS.has(bare))
    throw new AirlockError('USAGE', `'${name}' is not a Node built-in module (e.g. fs, net, child_process)`);
  return bare;
}

async function runner(ctx: Context) {
  const lake = await ctx.lake();
  const { PipelineRunner } = await import('../../shared/pipeline/run/index.js');
  return new PipelineRunner({
    catalog: lake.catalog,
    store: lake.stores.store,
    objects: lake.stores.objects,
    stagingDir: lake.stores.stagingDir,
  });
}

/** Registers `policy imports`: which npm packages and Node built-ins pipeline code steps may not import. */
export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description("the lake's policies");
  act(
    common(
      policy
        .command('imports')
        .description(
          'show or change what pipeline code steps may not import; a step importing a denied name is refused before it runs',
        )
        .option('--deny-package <names>', 'deny npm packages (comma-separated; @scope/* denies a scope)', list)
        .option('--allow-package <names>', 'remove packages from the deny list', list)
        .option('--deny-builtin <names>', 'deny Node built-ins (comma-separated, e.g. net,dns)', list)
        .option(
          '--allow-builtin <names>',
          'remove built-ins from the deny list (the sandbox still stops files, processes and network at run time)',
          list,
        )
        .addHelpText(
          'after',
          '\nWith no option, prints the policy. Default: built-ins that reach files, processes, threads or the network are denied; no package is.',
        ),
    ),
    async (ctx, _args, o) => {
      const r = await runner(ctx);
      const current = (await r.policy()).deny;
      const change = {
        denyPackages: ((o.denyPackage as string[] | undefined) ?? []).map(packageName),
        allowPackages: ((o.allowPackage as string[] | undefined) ?? []).map(packageName),
        denyBuiltins: ((o.denyBuiltin as string[] | undefined) ?? []).map(builtinName),
        allowBuiltins: ((o.allowBuiltin as string[] | undefined) ?? []).map(builtinName),
      };
      const changed = Object.values(change).some((x) => x.length > 0);
      const next = {
        packages: [...new Set([...current.packages, ...change.denyPackages])]
          .filter((p) => !change.allowPackages.includes(p))
          .sort(),
        builtins: [...new Set([...current.builtins.map((b) => b.replace(/^node:/, '')), ...change.denyBuiltins])]
          .filter((b) => !change.allowBuiltins.includes(b))
          .sort(),
      };
      if (changed) await r.setPolicy({ deny: next });
      const shown = changed ? next : current;
      return {
        value: { deny: shown, changed },
        text: `denied packages: ${shown.packages.join(', ') || '(none)'}\ndenied built-ins: ${shown.builtins.join(', ') || '(none)'}`,
      };
    },
  );
}
