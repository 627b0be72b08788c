import { parseCommand, type ParsedCommand } from './shell.js';
import type { ValidationRequest } from './request.js';
import { commandOf, contentsOf, isFileWrite, pathsOf } from './toolInput.js';

/** What rules and the risk scorer look at, extracted once per (uncached) request. */
export interface Facts {
  agent: string;
  tool: string;
  input: Record<string, unknown>;
  /** The raw command text, when the tool runs one. */
  commandText: string | undefined;
  command: ParsedCommand | undefined;
  paths: string[];
  contents: string[];
  fileWrite: boolean;
  /** The project root absolute paths are checked against, if known. */
  projectRoot: string | undefined;
}

export function factsOf(request: ValidationRequest, projectRoot: string | undefined): Facts {
  const commandText = commandOf(request.input);
  const contents = contentsOf(request.input);
  return {
    agent: request.agent,
    tool: request.tool,
    input: request.input,
    commandText,
    command: commandText === undefined ? undefined : parseCommand(commandText),
    paths: pathsOf(request.input),
    contents,
    fileWrite: isFileWrite(request.tool, contents),
    projectRoot,
  };
}
