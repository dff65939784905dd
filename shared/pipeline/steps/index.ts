export { describeCodeStep, validateCodeStepSpec } from './describeCodeStep.js';
export { formatExpectation, parseExpectation, parseExpectationList } from './expectations.js';
export { findStepFiles, loadPipelineSteps } from './findStepFiles.js';
export { parseSqlStep } from './parseSqlStep.js';

export type { CodeStep, CodeStepInput, DescribeCodeStepOptions } from './describeCodeStep.js';
export type { Expectation } from './expectations.js';
export type { Step, StepFile } from './findStepFiles.js';
export type { SqlStep } from './parseSqlStep.js';
