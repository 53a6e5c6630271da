/**
 * Every command's usage text, apart from the command modules: `--help` and the dispatch table in
 * main.ts must not load a command's dependencies (tfjs, ONNX Runtime, the pipeline) to print it.
 */
import { GATES } from '../model/release-gates.js';

export const RUN_USAGE = `usage: lvunet-edge run [--config FILE] --model DIR|FILE --source SPEC [--sink jsonl:PATH|stdout|none] [options]
       lvunet-edge run --demo [--max-frames N] [--mqtt URL --device-id ID]

Runs capture -> preprocess -> inference -> postprocess -> sink, one JSON result
(lvunet-edge/result@1) per frame. A supervisor process keeps a worker process (ONNX Runtime,
capture, pipeline) running, restarting it after a crash, and publishes over MQTT when a broker is
configured. SIGTERM/SIGINT stop capture, finish frames in flight and flush MQTT, then exit 0.
  --config FILE       configuration file (YAML/JSON; see deploy/config); --model, --source and the
                      options below override it
  --mqtt URL          publish to this broker (mqtt.url), e.g. mqtt://127.0.0.1:1883
  --device-id ID      this device's id in topics (device.id)
  --demo              a demo model (seeded random weights unless models/lvunet-kvasir exists),
                      synthetic frames, results on stdout
  --in-process        no supervisor or worker process (debugging; no MQTT)
  --model DIR|FILE    a model directory (manifest.json) or a bare .onnx built by 'model build'
  --precision P       fp32 (default), fp16 or int8: which file of a model directory
  --source SPEC       v4l2:/dev/videoN | folder:PATH | file:PATH (raw, .y4m, .mjpeg) | synthetic
  --sink SPEC         jsonl:PATH (appended), stdout (default) or none
  --ep LIST           execution providers in order, e.g. tensorrt,cuda,cpu (CPU is always the last resort)
  --strict            fail instead of falling back when a provider cannot be used
  --threads N         ONNX Runtime intra-op threads; 0: ONNX Runtime decides (one per core). Default: one
                      fewer than the cores, at least 1, leaving a core for the JS thread's pre/postprocessing
  --bundle-key PEM    a public key that signed model bundles may be signed with (repeatable); default:
                      every *.pem in bundle-keys/ beside the config file. Enables reload-model over MQTT
  --require-golden    reload-model refuses bundles without golden frames
  --max-frames N      stop after N frames from the source
  --save-masks DIR    write each frame-size mask as DIR/<file stem or frame id>.png
  --save-overlays DIR write each frame with its mask, outline and component boxes drawn over it as
                      DIR/<file stem or frame id>.png (PNG encoding on the worker's JS thread: a debugging aid)
  --ui [HOST:]PORT    serve the live view, /metrics and /healthz (ui.listen); a bare port binds
                      127.0.0.1; any other address needs a token
  --ui-token TOKEN    the token the view requires (ui.token; prefer LVUNET_UI_TOKEN or ui.token_file)
  --fps N             pace replay at N frames/s (live sources and paced replay keep the newest frame)
  --width W --height H --format F
                      frame size and pixel format of raw files (yuyv, nv12, grey, rgb24, rgba) and of
                      synthetic frames (rgb24, yuyv)
  --fit stretch|letterbox
                      how a frame reaches the model size (default stretch)
  --queue latest|backpressure
                      full queues drop the oldest frame (latest: default for live sources and --fps) or
                      make capture wait (backpressure: default for replay as fast as possible)
  --loops N           replay a folder or file N times (default 1)
  --threshold T       foreground is sigmoid(logit) > T (default: the manifest's, else 0.5)
  --rle, --contours   add the COCO run-length mask / component outlines to each result
  --max-frame-mp N    refuse file/folder frames over N megapixels before reading them (default 36)`;

export const BENCH_PIPELINE_USAGE = `usage: lvunet-edge bench pipeline --model DIR|FILE --source SPEC [--frames N] [--json] [options]

Measures, in one process with one session:
  inference_fps   session.run in a tight loop on one preprocessed frame (the model alone)
  pipeline_fps    the full pipeline over N frames (finite sources are looped), results discarded
and per-stage latency percentiles, MJPEG decode time per frame (decode_ms, zeros for raw frames),
capture->result latency (with --fps 30 or 60: at camera rate), event-loop lag
(perf_hooks.monitorEventLoopDelay), drops and rss. Every source kind reports the same JSON keys.
  --frames N          pipeline frames (default 300); the model-alone loop runs as many, at least 50
  --warmup N          runs before each measurement (default 10)
  --sink SPEC         where pipeline results go (default none)
  --rle, --contours   add the COCO RLE / component outlines to each result (what they cost)
  --json              print the report as JSON
Pipeline options (--ep, --threads, --fps, --width/--height/--format, --fit, --queue...) as for 'run'.`;

export const DOCTOR_USAGE = `usage: lvunet-edge doctor [--json]

Checks that the native addon loads, which ONNX Runtime library is used (path, version, C API) and
which execution providers it offers, and lists V4L2 devices (/dev/video*) with their formats when
this build has the V4L2 capture module.`;

export const FRAMES_MAKE_USAGE = `usage: lvunet-edge frames make --from DIR --count N [--size 640x480] [--format yuyv|nv12|grey|rgb24|mjpeg] [--quality 85] [--subsampling 422] --out FILE

Writes N frames to FILE, looping over the .jpg/.png images of DIR (or DIR/images) in name order,
each resized bilinearly to the given size and packed as YUYV or NV12 (BT.601 limited range, chroma
averaged over each pixel pair (YUYV) or 2x2 block (NV12), as cameras do), GREY (8-bit full-range
luma, exactly the pixel value of a greyscale image: an ultrasound video output), RGB24, or MJPEG (one
baseline JPEG per frame, concatenated, encoded by libjpeg-turbo through the native addon at
--quality, default 85, with --subsampling 422 (default: what UVC grabbers send), 420 or 444). Replay it with --source file:FILE
(name raw files like frames_1920x1080.nv12 or frames_640x480.grey, or pass --width/--height; .mjpeg needs neither).`;

export const FRAMES_RECORD_USAGE = `usage: lvunet-edge frames record --source v4l2:/dev/videoN --count N --out FILE [--size WxH] [--format F] [--fps N] [--control KEY=VALUE]...

Records N whole frames from a V4L2 camera to FILE in the formats that --source file:FILE replays:
raw frames packed tightly (row padding removed) for yuyv, nv12, grey and rgb24, or concatenated
JPEGs for mjpeg (UVC frames without Huffman tables get the standard ones, so any decoder reads
them). Frames the driver flags as damaged, short or torn are dropped and counted, never written.
  --format F     yuyv | nv12 | grey | rgb24 | mjpeg; default: from FILE's extension (.yuyv, .nv12,
                 .grey, .rgb, .mjpeg), which must match the format when both are given
  --size WxH     frame size to negotiate; default: WxH in FILE's name, else 640x480. A raw FILE
                 named with a size must get that size from the driver (replay reads it from the name)
  --fps N        frame rate to ask for (default: the highest the size offers)
  --control K=V  a camera control before streaming, as the run config's v4l2 controls (repeatable)`;

export const MODEL_BUILD_USAGE = `usage: lvunet-edge model build (--weights FILE.safetensors | --seed N) [--size 256 | --size HxW]
                              [--lambda 1] [--dynamic-batch] --out DIR

Writes DIR/lvunet.train.onnx (training mode: every BatchNorm and the LeakyReLU(λ) kept),
DIR/lvunet.fp32.onnx (deployment mode, fused) and DIR/manifest.json.
  --weights  training-mode weights as safetensors, named as the paper code's PyTorch state_dict
  --seed     seeded random weights (random BatchNorm statistics, λ = 1), for tests and benchmarks
  --size     model input size in pixels, a multiple of 128 (default 256)
  --lambda   the deep-training slope λ, if the weights file does not record it (metadata 'lambda');
             fusion requires λ = 1
  --dynamic-batch  a symbolic batch dimension instead of a fixed 1 (for offline batched inference;
             ONNX Runtime plans a fixed-size graph faster, and the runtime feeds one frame at a time)`;

export const MODEL_INSPECT_USAGE = `usage: lvunet-edge model inspect FILE.onnx [--json]

Prints params (weights and biases; BN running statistics excluded), MACs of every Conv at the
model's input size, opset, inputs, outputs, an op histogram and the file's sha256.`;

export const MODEL_QUANTIZE_USAGE = `usage: lvunet-edge model quantize --int8 --model DIR|FILE --calib DIR [--calib-count 64]
                                 [--method percentile|minmax|entropy] [--percentile 99.999]
                                 [--per-tensor] [--full-range] [--activations uint8|int8]
                                 [--keep-float NODE,...|none] --out DIR

Static INT8 quantisation in QDQ form (ONNX Runtime fuses it into QLinearConv and friends), calibrated
on real images preprocessed as the runtime does. Writes DIR/lvunet.int8.onnx and adds or replaces
its entry in DIR/manifest.json (precision, sha256, calibration images and method).
With no options it applies the settings \`model release\` ships, which pass its INT8 gate (mask
agreement with fp32 >= 0.98): percentile 99.999 ranges, per-channel 7-bit weights, firstconv and
encoder1 kept float.
  --model        a model directory (its lvunet.fp32.onnx is used) or a float32 deployment ONNX file
  --calib        calibration images: a dataset folder (its images/) or a folder of images
  --calib-count  how many images, spread evenly over the sorted folder (default 64)
  --method       activation ranges: percentile (default, with --percentile, default 99.999), minmax
                 (each tensor's full observed range: one outlier pixel widens it for every frame),
                 entropy (KL, TensorRT-style)
  --per-tensor   one weight scale per tensor instead of the default one per output channel
  --full-range   8-bit weights instead of the default 7-bit ones. 7-bit weights are exact on x64 CPUs
                 without AVX-512 VNNI / AVX-VNNI, whose u8×s8 kernel (VPMADDUBSW) saturates int16 pair
                 sums with full 8-bit weights (mask agreement 0.94 instead of 0.98 on a trained model),
                 and cost nothing elsewhere (docs/notes/int8-on-avx2.md)
  (--per-channel and --reduce-range are accepted and are the defaults)
  --activations  uint8 (default; fastest on x64, u8×s8 kernels) or int8
  --keep-float   node names, or name prefixes such as encoder2.1.block.2, that stay float; default
                 firstconv,encoder1 (full-resolution layers with the widest per-channel ranges:
                 quantising them costs about 2 points of mask agreement); none quantises every layer`;

export const MODEL_FP16_USAGE = `usage: lvunet-edge model fp16 --model DIR|FILE [--mode weights|full] --out DIR

Writes DIR/lvunet.fp16.onnx with float16 weights and float32 input and output, and adds or replaces
its entry in DIR/manifest.json.
  --mode  weights (default): weights stored fp16 and cast to fp32 at load, computing in fp32, which
          is what ONNX Runtime's CPU EP runs fastest; full: fp16 activations too, for GPU/NPU EPs`;

export const MODEL_CHECK_USAGE = `usage: lvunet-edge model check --model X.onnx --reference lvunet.fp32.onnx --data DIR [--limit N]
                              [--threads 2] [--json]

Runs both models on DIR's images and reports logit max/mean |error|, the Dice agreement of their
masks (logit > 0) and, when DIR has masks/, each model's Dice against the ground truth.`;

export const MODEL_RELEASE_USAGE = `usage: lvunet-edge model release --run DIR --data DIR --out DIR [--weights FILE]
                                [--precisions fp16,int8] [--calib-count 64] [--limit N] [--threads 2]
                                [--name NAME] [--stress-limit N] [--no-stress]

Turns a finished training run into a model directory: fused lvunet.fp32.onnx (+ the training-mode
graph), evaluated on the run's held-out test split (Dice, IoU, precision, recall, specificity, HD95,
per image and pooled, at model and native size), FP16 and INT8 (calibrated on train-split images
only) each checked against fp32 on the test split and written only if they pass their gate
(FP16 mask Dice ≥ ${GATES.fp16.minMeanMaskDice}; INT8 mask Dice ≥ ${GATES.int8.minMeanMaskDice} and Dice vs truth down by ≤ ${GATES.int8.maxTruthDiceDrop}),
stress tests (the test split under gamma, contrast, gain, blur, JPEG, resolution and noise shifts, plus
hue, saturation and specular highlights for colour data or speckle for greyscale data: fp32 Dice under
each, and each precision's agreement with fp32, which must also hold on the worst shift: FP16 ≥
${GATES.fp16.minStressMaskDice}, INT8 ≥ ${GATES.int8.minStressMaskDice}), and manifest.json with the data's provenance and terms
(DIR/SOURCE.md), split, epochs, schedule, metric table, stress table and agreement figures. Exits
non-zero if a requested precision was rejected.
  --run        a folder written by 'lvunet-edge train' (state.json, split.json, log.csv, lvunet.safetensors)
  --data       the dataset folder the run trained on
  --weights    release these weights instead of the run's lvunet.safetensors
  --precisions which converted precisions to make besides fp32 (default fp16,int8; 'none' for neither)
  --limit      evaluate and check on at most N test images (smoke runs; a release should use all)
  --stress-limit  run the stress tests on at most N of those images (default: all)
  --no-stress  skip the stress tests (the manifest then says so and nothing is gated on them)`;

export const TRAIN_USAGE = `usage: lvunet-edge train --data DIR --out DIR [--epochs 300] [--batch 8] [--size 256] [--seed 42]
                        [--split FILE] [--resume] [--limit N] [--stop-after N] [--lr 0.001] [--wasm]
                        [--workers 1] [--augment field|ultrasound|basic] [--init MODEL]

Trains LV-UNet from scratch with the paper's recipe (Adam, weight decay 1e-4, cosine LR to 1e-5,
0.5·BCE + (1 − soft Dice), rot90/flip/brightness/contrast augmentation) and a deep-training λ that
reaches exactly 1 for the last 10 % of epochs. DIR/ receives split.json (64/16/20 by --seed unless
--split is given), log.csv, state.json, last.safetensors (+ last.optim.safetensors, Adam's state)
each epoch, and lvunet.safetensors: the λ = 1 epoch with the best validation Dice, which
'lvunet-edge model build --weights' takes as it is.
  --data    a dataset folder with images/ and masks/
  --resume  continue DIR's run from its last completed epoch (same epochs, batch, size, seed, lr)
  --init    fine-tune instead: start from a model directory (models/lvunet-kvasir), its
            lvunet.train.onnx, or a λ = 1 lvunet.safetensors. λ stays 1 for every epoch, Adam starts
            fresh, the lr runs its cosine from 3e-4 unless --lr is given, and the split.json beside
            the weights is used unless --split is given (so their test images stay unseen).
  --limit   use at most N train and N val images (smoke runs)
  --stop-after  train at most N epochs in this invocation, then exit (continue with --resume)
  --wasm    use the wasm backend even when @tensorflow/tfjs-node is installed
  --augment field (new runs' default for colour data): also what differs between one centre's
            equipment and another's, drawn per sample: zoom and crop, gamma, hue, saturation,
            specular highlights, blur, noise, JPEG artefacts (the operations the release's stress
            tests use). ultrasound (default for greyscale data): zoom and crop, gain, gamma, contrast,
            speckle, blur, downscaling, noise, JPEG. basic: the paper's alone. A resumed run keeps
            the profile it started with (runs from before profiles: basic).
  --workers data-parallel worker threads (default 1). With N ≥ 2 each worker holds a replica and
            computes gradients on its share of every batch (batch/N images), the main thread
            averages them and takes one Adam step; wasm backend, about N times the images/s on N
            free cores. BatchNorm uses each shard's statistics (as PyTorch DDP without
            SyncBatchNorm) and the replicas' running statistics are averaged after each step, so
            results differ slightly from 1 worker. The default stays 1 because it is the exact
            computation of earlier versions: a run resumed with defaults continues bit for bit.
            Checkpoints are the same with any N, so --resume may change N (the numbers from then
            on are those of the new N). Data order and augmentation depend only on --seed.`;

export const EVAL_USAGE = `usage: lvunet-edge eval --model FILE.onnx|DIR --data DIR [--split FILE [--subset test]] [--limit N]
                         [--save-masks DIR] [--save-overlays DIR] [--csv FILE] [--threads N] [--json]
                         [--stress [--stress-set colour|grey]]

Runs the model on DIR/images/* and scores the masks (sigmoid > 0.5, i.e. logit > 0) against
DIR/masks/*, per image and pooled over all pixels, at the model's input size (truth resized by
nearest neighbour) and at each image's native size (probabilities resized bilinearly, then
thresholded). Metrics: Dice, IoU, precision, recall, specificity, HD95 (pixels, medpy's definition).
Empty masks: a ratio with a zero denominator is 1 when both masks are empty, else 0; HD95 is
undefined when either mask is empty and such images are counted. std is over images (population).
  --model FILE|DIR   an .onnx built by 'model build' or a model directory (manifest.json)
  --data DIR         a dataset folder with images/ and masks/
  --split FILE       a split file (JSON {seed, fractions, train, val, test}); evaluate one subset of it
  --subset NAME      train, val or test (default test; needs --split)
  --limit N          only the first N pairs (in stem order)
  --save-masks DIR   write each predicted mask at the image's native size as DIR/<image stem>.png
  --save-overlays DIR
                     write each image with the prediction (red fill and outline) and the ground
                     truth (green outline) drawn over it as DIR/<image stem>.png
  --csv FILE         per-image rows: stem, native-size dice, iou, precision, recall, specificity,
                     hd95 (empty when undefined), and dice at model size
  --threads N        ONNX Runtime intra-op threads (default 1)
  --json             print the full report (summary and per-image rows) as JSON on stdout
  --stress           also score the images under the stress shifts 'model release' records (gamma,
                     contrast, gain, blur, JPEG, resolution, noise; hue, saturation and specular
                     highlights for colour data, speckle for greyscale data); with a model directory,
                     its fp16 and int8 files are checked against its fp32 under each shift too
  --stress-set SET   colour or grey (default: from the images, grey when 90 % have R = G = B)
Progress goes to stderr.`;

export const BUNDLE_KEYGEN_USAGE = `usage: lvunet-edge bundle keygen --out DIR

Writes DIR/private.pem (ed25519, PKCS#8, mode 0600) and DIR/public.pem, and prints the key id.
Refuses to overwrite an existing key.`;

export const BUNDLE_SIGN_USAGE = `usage: lvunet-edge bundle sign --model DIR --key private.pem --out BUNDLE_DIR
                          [--version V [--group G] [--expires DATE]]
                          [--golden DIR_OF_IMAGES [--golden-count 4] [--threshold 0.98] [--model-file F]]

Copies the model files DIR/manifest.json lists (checking their sha256) into BUNDLE_DIR (new or
empty), optionally stores golden frames with the masks this model gives on them (onnxruntime-node,
reference preprocessing), and writes manifest.json with manifest.sig (ed25519 over its bytes).
  --version V      release version, 1 to 4 dot-separated integers (2.1.0): devices refuse to switch
                   to a lower version over the fleet link (rollback goes to their previous bundle)
  --group G        only devices whose config device.group is G may install it
  --expires DATE   refused for install or rollback after DATE (2027-06-30 = through that day, UTC;
                   or 2027-06-30T12:00:00Z); serving an installed bundle never stops on expiry
Without --version the bundle is unversioned (version 0), for any device, never expiring.`;

export const BUNDLE_VERIFY_USAGE = `usage: lvunet-edge bundle verify BUNDLE --pubkey public.pem [--pubkey ...] [--self-test] [--json]

BUNDLE is a directory or an http(s) URL. Checks the signature, every file's size and sha256, that
a directory holds no other files, and with --self-test runs the golden frames. Exit 1 on failure.`;

export const BUNDLE_INSTALL_USAGE = `usage: lvunet-edge bundle install BUNDLE --state-dir DIR --pubkey public.pem [--pubkey ...] [--require-golden]
                             [--device-group G] [--allow-downgrade] [--json]

Fetches, verifies, self-tests and atomically makes BUNDLE the current model under DIR/models/.
A bundle bound to a device group needs --device-group with that group; one whose version is lower
than the installed one needs --allow-downgrade (an operator's local decision: the fleet link
never downgrades except by rollback to the recorded previous bundle); an expired one is refused.`;

export const BUNDLE_ROLLBACK_USAGE = `usage: lvunet-edge bundle rollback --state-dir DIR --pubkey public.pem [--pubkey ...] [--device-group G] [--json]

Makes the previous model current again (after re-checking its signature, hashes, group and expiry).`;

export const BUNDLE_STATUS_USAGE = `usage: lvunet-edge bundle status --state-dir DIR [--json]

Prints the current and previous model versions.`;

const BROKER_OPTIONS = `  --mqtt URL          the fleet broker, mqtt://host:1883 or mqtts://host:8883
  --ca FILE --cert FILE --key FILE   mutual TLS (deploy broker: the certificate CN is the identity)
  --client-id ID      MQTT client id (the deploy broker uses the certificate CN instead)
  --prefix P          topic prefix (default lvunet)`;

export const FLEET_INGEST_USAGE = `usage: lvunet-edge fleet ingest (--mqtt URL | --nats URL[,URL...]) --db sqlite:FILE|postgres://... [options]

Stores what the devices publish (results, events, telemetry, status) in the fleet database. Several
ingest processes may run with the same --group: the broker splits results, events and telemetry
between them (MQTT 5 shared subscription). Each delivery is acknowledged only after its row is
committed; results are unique on (device, seq), so redeliveries never make a second row. The
broker keeps this process's session (and queues for it) while it is down; give each process its
own --client-id (on the deploy broker: its own certificate, e.g. ingest-1, ingest-2).

${BROKER_OPTIONS}
  --db SPEC           sqlite:FILE or postgres://user@host:port/db
  --group NAME        shared subscription group (default lvunet-ingest)
  --batch-rows N      rows per transaction at most (default 500)
  --batch-ms MS       longest wait for a batch to fill (default 25)
  --receive-maximum N unacknowledged deliveries the broker may have out to this process (default 1000)
  --session-expiry-s S  how long the broker keeps the session while the process is down (default 604800)

On a NATS cluster (deploy/nats/) instead of mosquitto: --nats tls://nats-1:4222,tls://nats-2:4222,...
reads the replicated JetStream stream LVUNET (created if missing) through the durable consumer
"ingest", shared by every ingest process; a message is acknowledged after its row is committed.
--ca/--cert/--key are the ingest's TLS identity (its certificate subject is its NATS user).
  --max-ack-pending N deliveries awaiting commit, over all ingest processes (default 2000)
  --ack-wait-s S      a delivery not acknowledged this long (its ingest died) goes to another (default 30;
                      every ingest process must give the same, it is the shared consumer's setting)
Stops on SIGTERM/SIGINT after committing and acknowledging what it received.`;

export const FLEET_STATUS_USAGE = `usage: lvunet-edge fleet status --db SPEC [--json]

Every device the ingest has seen: online/offline (birth and will), last seen, model version/file,
sha256 and precision, provider, fps, event-loop lag, worker restarts, offline-queue depth, results
stored, rollout state and last error.`;

export const FLEET_SEND_USAGE = `usage: lvunet-edge fleet send COMMAND (--device ID... | --group NAME) --mqtt URL --db SPEC [options]

Sends a command (status, snapshot, set-threshold, reload-model) and prints each device's reply.
  --args JSON         the command's payload without id, e.g. '{"value":0.6}'
  --timeout-s S       wait this long for each reply (default 30)
  --json              replies as JSON
${BROKER_OPTIONS}
Exit status 1 when any device failed, refused or did not answer.`;

export const FLEET_GROUP_USAGE = `usage: lvunet-edge fleet group (add|remove) NAME DEVICE... --db SPEC
       lvunet-edge fleet group list --db SPEC [--json]

Device groups live in the fleet database; 'fleet send --group' and 'fleet rollout --group' use them.`;

export const FLEET_ROLLOUT_USAGE = `usage: lvunet-edge fleet rollout BUNDLE --group NAME --mqtt URL --db SPEC [options]
       lvunet-edge fleet rollout --resume ID --mqtt URL --db SPEC [broker options]
       lvunet-edge fleet rollout --abort ID --db SPEC
       lvunet-edge fleet rollout --list --db SPEC [--json]

Sends reload-model with BUNDLE (an http(s) URL, or a bundle directory path on the devices) to the
group in waves. Each device verifies, self-tests and switches (or keeps its model and says why).
Halts after a wave in which a device failed its self-test, or more than --max-failures of the
wave's devices failed or did not answer. State is in the database: --resume continues a halted or
interrupted rollout, --abort stops one before its next wave.
  --waves LIST        cumulative percentages of the group (default 1,10,50,100)
  --max-failures X    tolerated share of a wave failing, 0..1 or N% (default 0)
  --timeout-s S       wait for each device's reply (default 2760: reload-model may take 45 min)
  --sha256 HEX --precision P   expected model file, checked by each device before switching
${BROKER_OPTIONS}`;

export const FLEET_SERVE_USAGE = `usage: lvunet-edge fleet serve --db SPEC [--host 127.0.0.1] [--port 8090]

The fleet page: devices (state, model, health, last error) and rollouts with each wave's outcomes,
refreshed every 5 s; the same data as JSON at /status.json. Read-only; listens on 127.0.0.1 unless
--host says otherwise (put an authenticating reverse proxy in front to share it).`;
