import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import path from 'node:path';
const file = process.argv[2];
const bytes = readFileSync(file);
const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, extra: { session: { model_external_initializers_file_folder_path: path.dirname(file) } } });
console.log('ok from bytes', s.inputNames);
