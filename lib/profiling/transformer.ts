/**
 * The line profiler's build step (a TypeScript `before` transformer, in the spirit of
 * line_profiler's autoprofile): rewrites each function marked for profiling —
 * `profile(function name() {...})` or a method decorated `@profile` — so that it
 *
 *   - opens a frame on entry (`const __lpf = __lp.enter(id)`) and closes it in `finally`,
 *   - calls `__lpf.line(N)` before each statement, N being the TypeScript line,
 *   - charges `for`/`for await` headers through `__lp.iter` (each request for the next
 *     item is a hit of the header: the wait for the next batch lands on that line),
 *   - charges `while`/`for(;;)` conditions to their line,
 *   - times the statements of inline callbacks (the body passed to tf.variableGrads, say)
 *     on their own lines and returns to the enclosing line when they finish,
 *   - records what each line is: a `// @phase NAME` comment on a statement's first line
 *     tags it (e.g. `data` for the wait for the next batch, `forward`, `backward`); other
 *     loop headers are tagged `loop`. The report reads these tags, not the source text.
 *
 * While profiling is off, `enter` hands out a do-nothing frame: a few calls per step.
 */
import path from 'node:path';
import ts from 'typescript';

const RUNTIME = 'lib/profiling/runtime';
/** The names the instrumented code uses (in a notebook cell without the leading `__`, which tslab's export of a cell's names mishandles). */
const NAMES = { build: { lp: '__lp', frame: '__lpf' }, cell: { lp: 'lp$runtime', frame: 'lp$frame' } };

interface Options {
  /** Project root, for file paths in reports and the runtime's require path. */
  root: string;
  /**
   * A notebook cell instead of a file of the project (the project's Jupyter kernel,
   * notebook/cell-profiler.ts): its name in the tables (`<cell 7>`), the runtime's absolute
   * path, and every `profile(...)` is the profiler's (the import may be in an earlier cell).
   */
  cell?: { file: string; runtime: string };
  /** Told of each `profile(...)` that cannot be instrumented, and why (it keeps whole-function timing). */
  onSkip?: (name: string, line: number, reason: string) => void;
}

/** Why `profile(arg)` cannot be instrumented line by line; undefined when it can. */
function whyNotInstrumented(arg: ts.Expression): string | undefined {
  if (ts.isFunctionExpression(arg)) return arg.asteriskToken ? 'a generator function' : undefined;
  if (ts.isArrowFunction(arg)) return 'an arrow function (write profile(function name() {...}) to time its lines)';
  return 'not a function written here (wrap the function where it is defined: profile(function name() {...}))';
}

function isProfileIdentifier(node: ts.Node): boolean {
  return ts.isIdentifier(node) && node.text === 'profile';
}

/** Whether the file imports `profile` from the profiling module (and nothing else of that name). */
function importsProfile(sf: ts.SourceFile): boolean {
  return sf.statements.some((s) => ts.isImportDeclaration(s) && ts.isStringLiteral(s.moduleSpecifier) &&
    /profiling(\/index)?$/.test(s.moduleSpecifier.text) &&
    !!s.importClause?.namedBindings && ts.isNamedImports(s.importClause.namedBindings) &&
    s.importClause.namedBindings.elements.some((e) => e.name.text === 'profile'));
}

export function profileTransformer(options: Options): ts.TransformerFactory<ts.SourceFile> {
  return (context) => (sf) => {
    if (!options.cell && !importsProfile(sf)) return sf;
    const { lp: LP, frame: FRAME } = options.cell ? NAMES.cell : NAMES.build;
    const f = context.factory;
    const registrations: ts.Statement[] = [];
    /** `profile(...)` calls given their reason for whole-function timing. */
    let skips = 0;
    const relFile = options.cell?.file ?? path.relative(options.root, sf.fileName).split(path.sep).join('/');
    const lines = sf.text.split('\n');
    const lineOf = (node: ts.Node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    /** Tags of the function being instrumented, by line. */
    let tags = new Map<number, string>();
    const scanner = ts.createScanner(ts.ScriptTarget.Latest, false);

    /** The NAME of a `// @phase NAME` comment on the statement's first line, if any. */
    function phaseOf(s: ts.Node): string | undefined {
      scanner.setText(lines[lineOf(s) - 1]);
      for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
        if (kind === ts.SyntaxKind.SingleLineCommentTrivia) return /@phase\s+([\w-]+)/.exec(scanner.getTokenText())?.[1];
      }
      return undefined;
    }

    function tag(s: ts.Statement): void {
      const phase = phaseOf(s) ?? (ts.isForOfStatement(s) || ts.isForStatement(s) || ts.isWhileStatement(s) || ts.isDoStatement(s) ? 'loop' : undefined);
      if (phase) tags.set(lineOf(s), phase);
    }

    const frameCall = (method: 'line' | 'resume' | 'exit', line?: number) => f.createExpressionStatement(
      f.createCallExpression(f.createPropertyAccessExpression(f.createIdentifier(FRAME), method), undefined,
        line === undefined ? [] : [f.createNumericLiteral(line)]));
    const lpCall = (name: string, args: ts.Expression[]) =>
      f.createCallExpression(f.createPropertyAccessExpression(f.createIdentifier(LP), name), undefined, args);

    /** Inline callbacks inside a statement at `line`: their statements get their own lines. */
    function visitExpressions<T extends ts.Node>(node: T, line: number): T {
      const visit = (n: ts.Node): ts.Node => {
        if ((ts.isArrowFunction(n) || ts.isFunctionExpression(n)) && !(ts.isFunctionExpression(n) && n.asteriskToken)) {
          return instrumentCallback(n, line);
        }
        return ts.visitEachChild(n, visit, context);
      };
      return ts.visitEachChild(node, visit, context);
    }

    function instrumentCallback(fn: ts.ArrowFunction | ts.FunctionExpression, enclosingLine: number): ts.Expression {
      // A one-line callback (`xs.map((x) => x.y)`) belongs to its statement's line.
      if (!ts.isBlock(fn.body) && lineOf(fn.body) === enclosingLine) return fn;
      const statements = ts.isBlock(fn.body)
        ? instrumentStatements(fn.body.statements)
        : [frameCall('line', lineOf(fn.body)), f.createReturnStatement(visitExpressions(fn.body, lineOf(fn.body)))];
      const body = f.createBlock([f.createTryStatement(f.createBlock(statements, true), undefined,
        f.createBlock([frameCall('resume', enclosingLine)], true))], true);
      return ts.isArrowFunction(fn)
        ? f.updateArrowFunction(fn, fn.modifiers, fn.typeParameters, fn.parameters, fn.type, fn.equalsGreaterThanToken, body)
        : f.updateFunctionExpression(fn, fn.modifiers, fn.asteriskToken, fn.name, fn.typeParameters, fn.parameters, fn.type, body);
    }

    const asBlock = (s: ts.Statement): ts.Block => ts.isBlock(s) ? f.updateBlock(s, instrumentStatements(s.statements))
      : f.createBlock(instrumentStatements([s]), true);

    const withLine = (expr: ts.Expression, line: number) =>
      f.createParenthesizedExpression(f.createCommaListExpression([
        f.createCallExpression(f.createPropertyAccessExpression(f.createIdentifier(FRAME), 'line'), undefined, [f.createNumericLiteral(line)]),
        expr,
      ]));

    /** Returns the statement rewritten, and whether a line event goes before it. */
    function instrumentStatement(s: ts.Statement): { stmt: ts.Statement; mark: boolean } {
      const line = lineOf(s);
      if (!ts.isBlock(s)) tag(s);
      if (ts.isBlock(s)) return { stmt: asBlock(s), mark: false };
      if (ts.isForOfStatement(s)) {
        return {
          stmt: f.updateForOfStatement(s, s.awaitModifier, s.initializer,
            lpCall('iter', [f.createIdentifier(FRAME), f.createNumericLiteral(line), visitExpressions(s.expression, line)]), asBlock(s.statement)),
          mark: false,
        };
      }
      if (ts.isForStatement(s)) {
        return {
          stmt: f.updateForStatement(s, s.initializer && visitExpressions(s.initializer, line),
            withLine(s.condition ? visitExpressions(s.condition, line) : f.createTrue(), line),
            s.incrementor && visitExpressions(s.incrementor, line), asBlock(s.statement)),
          mark: false,
        };
      }
      if (ts.isWhileStatement(s)) {
        return { stmt: f.updateWhileStatement(s, withLine(visitExpressions(s.expression, line), line), asBlock(s.statement)), mark: false };
      }
      if (ts.isDoStatement(s)) {
        return { stmt: f.updateDoStatement(s, asBlock(s.statement), withLine(visitExpressions(s.expression, line), line)), mark: false };
      }
      if (ts.isIfStatement(s)) {
        return {
          stmt: f.updateIfStatement(s, visitExpressions(s.expression, line), asBlock(s.thenStatement), s.elseStatement && asBlock(s.elseStatement)),
          mark: true,
        };
      }
      if (ts.isTryStatement(s)) {
        return {
          stmt: f.updateTryStatement(s, asBlock(s.tryBlock),
            s.catchClause && f.updateCatchClause(s.catchClause, s.catchClause.variableDeclaration, asBlock(s.catchClause.block)),
            s.finallyBlock && asBlock(s.finallyBlock)),
          mark: false,
        };
      }
      if (ts.isSwitchStatement(s)) {
        const clauses = s.caseBlock.clauses.map((c) => ts.isCaseClause(c)
          ? f.updateCaseClause(c, c.expression, instrumentStatements(c.statements))
          : f.updateDefaultClause(c, instrumentStatements(c.statements)));
        return { stmt: f.updateSwitchStatement(s, visitExpressions(s.expression, line), f.updateCaseBlock(s.caseBlock, clauses)), mark: true };
      }
      if (ts.isLabeledStatement(s)) {
        const inner = instrumentStatement(s.statement);
        return { stmt: f.updateLabeledStatement(s, s.label, inner.stmt), mark: inner.mark };
      }
      if (ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s)) return { stmt: s, mark: false };
      return { stmt: visitExpressions(s, line), mark: true };
    }

    function instrumentStatements(statements: readonly ts.Statement[]): ts.Statement[] {
      const out: ts.Statement[] = [];
      for (const s of statements) {
        const { stmt, mark } = instrumentStatement(s);
        if (mark) out.push(frameCall('line', lineOf(s)));
        out.push(stmt);
      }
      return out;
    }

    /** The new body of a profiled function, and its registration. */
    function instrumentBody(fn: ts.FunctionLikeDeclaration, name: string, declarationStart: ts.Node): ts.Block {
      const body = fn.body as ts.Block;
      const start = lineOf(declarationStart);
      const end = sf.getLineAndCharacterOfPosition(fn.end).line + 1;
      const id = `${relFile}:${start}:${name}`;
      const outer = tags;
      tags = new Map();
      const statements = instrumentStatements(body.statements);
      registrations.push(f.createExpressionStatement(lpCall('register', [f.createObjectLiteralExpression([
        f.createPropertyAssignment('id', f.createStringLiteral(id)),
        f.createPropertyAssignment('file', f.createStringLiteral(relFile)),
        f.createPropertyAssignment('name', f.createStringLiteral(name)),
        f.createPropertyAssignment('line', f.createNumericLiteral(start)),
        f.createPropertyAssignment('source', f.createArrayLiteralExpression(lines.slice(start - 1, end).map((l) => f.createStringLiteral(l.replace(/\r$/, ''))))),
        f.createPropertyAssignment('tags', f.createObjectLiteralExpression(
          [...tags].map(([line, phase]) => f.createPropertyAssignment(f.createNumericLiteral(line), f.createStringLiteral(phase))))),
      ])])));
      tags = outer;
      return f.createBlock([
        f.createVariableStatement(undefined, f.createVariableDeclarationList(
          [f.createVariableDeclaration(FRAME, undefined, undefined, lpCall('enter', [f.createStringLiteral(id)]))], ts.NodeFlags.Const)),
        f.createTryStatement(f.createBlock(statements, true), undefined, f.createBlock([frameCall('exit')], true)),
      ], true);
    }

    const visit = (node: ts.Node): ts.Node => {
      // profile(function name() {...}) / profile(async function name() {...})
      if (options.onSkip && ts.isCallExpression(node) && isProfileIdentifier(node.expression) && node.arguments.length === 1) {
        const why = whyNotInstrumented(node.arguments[0]);
        if (why) {
          const arg = node.arguments[0];
          const name = (ts.isFunctionExpression(arg) && arg.name?.text) || (ts.isIdentifier(arg) && arg.text) ||
            (ts.isVariableDeclaration(node.parent) && ts.isIdentifier(node.parent.name) && node.parent.name.text) || 'anonymous';
          options.onSkip(name, lineOf(node), why);
          skips++;
          // Whole-function timing, with the reason in its table.
          return f.updateCallExpression(node, node.expression, node.typeArguments,
            [ts.visitEachChild(arg, visit, context), f.createIdentifier('undefined'), f.createStringLiteral(why), f.createStringLiteral(name)]);
        }
      }
      if (ts.isCallExpression(node) && isProfileIdentifier(node.expression) && node.arguments.length === 1 &&
        ts.isFunctionExpression(node.arguments[0]) && !node.arguments[0].asteriskToken && node.arguments[0].body) {
        const fn = node.arguments[0];
        let name = fn.name?.text;
        if (!name && ts.isVariableDeclaration(node.parent) && ts.isIdentifier(node.parent.name)) name = node.parent.name.text;
        const statement = ts.findAncestor(node, ts.isVariableStatement) ?? node;
        return f.updateFunctionExpression(fn, fn.modifiers, fn.asteriskToken, fn.name, fn.typeParameters, fn.parameters, fn.type,
          instrumentBody(fn, name ?? 'anonymous', statement));
      }
      // @profile method() {...}
      if (ts.isMethodDeclaration(node) && node.body && !node.asteriskToken &&
        (ts.getDecorators(node) ?? []).some((d) => isProfileIdentifier(d.expression))) {
        const cls = ts.findAncestor(node, ts.isClassLike);
        const name = `${cls?.name?.text ?? 'class'}.${node.name.getText(sf)}`;
        const modifiers = node.modifiers?.filter((m) => !(ts.isDecorator(m) && isProfileIdentifier(m.expression)));
        return f.updateMethodDeclaration(node, modifiers, node.asteriskToken, node.name, node.questionToken, node.typeParameters,
          node.parameters, node.type, instrumentBody(node, name, node));
      }
      return ts.visitEachChild(node, visit, context);
    };

    const transformed = ts.visitEachChild(sf, visit, context);
    if (!registrations.length) return skips ? transformed : sf;
    let runtime = options.cell?.runtime ?? path.relative(path.dirname(sf.fileName), path.join(options.root, RUNTIME)).split(path.sep).join('/');
    if (!options.cell && !runtime.startsWith('.')) runtime = `./${runtime}`;
    const requireRuntime = f.createVariableStatement(undefined, f.createVariableDeclarationList([f.createVariableDeclaration(LP, undefined, undefined,
      f.createCallExpression(f.createIdentifier('require'), undefined, [f.createStringLiteral(runtime)]))], ts.NodeFlags.Const));
    // After the imports, so that the registrations run when the module loads.
    const firstNonImport = transformed.statements.findIndex((s) => !ts.isImportDeclaration(s));
    const at = firstNonImport < 0 ? transformed.statements.length : firstNonImport;
    return f.updateSourceFile(transformed, [
      ...transformed.statements.slice(0, at), requireRuntime, ...registrations, ...transformed.statements.slice(at),
    ]);
  };
}
