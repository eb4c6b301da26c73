#!/usr/bin/env node
// KafkaJS 2.2.4 round trip.
//
// For each codec (none, gzip, snappy, lz4, zstd): admin.createTopics a
// 4-partition topic, produce 100,000 keyed records (explicit timestamps, 1-2
// headers) in sequential producer.send() calls, computing each record's offset
// from the per-partition baseOffset that send() returns and the partition the
// (Java-compatible) default partitioner chose; then consume with a consumer
// group (KafkaJS has no assign-only consumer: unique groupId, fromBeginning)
// and check that each partition yields exactly those records in offset order
// with the same key, value, headers and timestamp.
//
// KafkaJS only ships gzip; snappy, lz4 and zstd are registered below from
// pure-JS/wasm packages (no native builds):
//   snappy: snappyjs (raw snappy blocks out; raw or xerial-framed in)
//   lz4:    lz4js (LZ4 frame; note: its decoder mishandles frames with block
//           checksums, which neither librdkafka nor the Java client writes)
//   zstd:   @bokuweb/zstd-wasm (zstd built to wasm, embedded in the package)
//
// usage: node kafkajs_roundtrip.js [BOOTSTRAP]
//   Without BOOTSTRAP and without $SHOPSTREAM_TEST_BOOTSTRAP it starts a fresh
//   broker through with_broker.sh.  Env: SHOPSTREAM_TEST_CODECS,
//   SHOPSTREAM_TEST_RECORDS, SHOPSTREAM_TEST_SKIP_CREATE (see lib.sh).
'use strict'

const path = require('path')
const { spawnSync } = require('child_process')

const bootstrap = process.argv[2] || process.env.SHOPSTREAM_TEST_BOOTSTRAP
if (!bootstrap) {
  const r = spawnSync('bash', [path.join(__dirname, 'with_broker.sh'), process.execPath, __filename], {
    stdio: 'inherit',
  })
  process.exit(r.status === null ? 1 : r.status)
}

const { Kafka, CompressionTypes, CompressionCodecs, Partitioners, logLevel } = require('kafkajs')
const snappy = require('snappyjs')
const lz4 = require('lz4js')
const zstd = require('@bokuweb/zstd-wasm')

const CLIENT = 'kafkajs'
const PARTITIONS = 4
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']
const MAX_REPORTED = 20
const SEND_CHUNK = 5000

// ---- compression codecs ----------------------------------------------------

// Java clients frame snappy data the "xerial" way: an 8-byte magic, two
// big-endian int32 versions, then blocks of [int32 length][raw snappy block].
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])

function snappyDecompress(buf) {
  if (buf.length >= 16 && buf.subarray(0, 8).equals(XERIAL_MAGIC)) {
    const parts = []
    let pos = 16
    while (pos + 4 <= buf.length) {
      const len = buf.readInt32BE(pos)
      pos += 4
      if (len < 0 || pos + len > buf.length) throw new Error('truncated xerial snappy block')
      parts.push(Buffer.from(snappy.uncompress(buf.subarray(pos, pos + len))))
      pos += len
    }
    return Buffer.concat(parts)
  }
  return Buffer.from(snappy.uncompress(buf))
}

function registerCodecs() {
  const snappyCodec = {
    async compress(encoder) {
      return Buffer.from(snappy.compress(encoder.buffer))
    },
    async decompress(buffer) {
      return snappyDecompress(buffer)
    },
  }
  const lz4Codec = {
    async compress(encoder) {
      return Buffer.from(lz4.compress(encoder.buffer))
    },
    async decompress(buffer) {
      return Buffer.from(lz4.decompress(buffer))
    },
  }
  const zstdCodec = {
    async compress(encoder) {
      return Buffer.from(zstd.compress(encoder.buffer, 3))
    },
    async decompress(buffer) {
      return Buffer.from(zstd.decompress(buffer))
    },
  }
  CompressionCodecs[CompressionTypes.Snappy] = () => snappyCodec
  CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec
  CompressionCodecs[CompressionTypes.ZSTD] = () => zstdCodec
}

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

// ---- expected records --------------------------------------------------------

function log(msg) {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`)
}

class Records {
  constructor(codec, n) {
    this.codec = codec
    this.n = n
    // An hour ago, whole seconds: clearly not the broker's clock.
    this.baseTs = Math.floor((Date.now() - 3600 * 1000) / 1000) * 1000
    this.partition = new Int32Array(n).fill(-1)
    this.offset = new Array(n).fill(null) // BigInt
    this.errors = []
    this.expected = null
    this.pos = null
  }

  key(i) {
    return `key-${String(i).padStart(6, '0')}`
  }
  value(i) {
    return `${CLIENT}|${this.codec}|${String(i).padStart(6, '0')}|payload-abcdefghijklmnopqrstuvwxyz`
  }
  headers(i) {
    const h = { seq: String(i) }
    if (i % 3 === 0) h.trace = `t-${String(i).padStart(6, '0')}`
    return h
  }
  timestamp(i) {
    return this.baseTs + i + (i % 7) * 1000
  }

  error(msg) {
    this.errors.push(msg)
    if (this.errors.length <= MAX_REPORTED) console.error(`  MISMATCH ${CLIENT}/${this.codec}: ${msg}`)
  }

  finishProduce() {
    const missing = []
    for (let i = 0; i < this.n; i++) if (this.partition[i] < 0 || this.offset[i] === null) missing.push(i)
    if (missing.length) {
      this.error(`${missing.length} records without an offset (first #${missing[0]})`)
      return false
    }
    this.expected = Array.from({ length: PARTITIONS }, () => [])
    for (let i = 0; i < this.n; i++) {
      const p = this.partition[i]
      if (p < 0 || p >= PARTITIONS) {
        this.error(`record #${i} went to partition ${p}`)
        return false
      }
      this.expected[p].push(i)
    }
    this.expected.forEach((seqs, p) => {
      if (!seqs.length) this.error(`partition ${p} received no records: keys are not spread`)
      seqs.sort((a, b) => (this.offset[a] < this.offset[b] ? -1 : this.offset[a] > this.offset[b] ? 1 : 0))
      for (let j = 1; j < seqs.length; j++) {
        const a = seqs[j - 1]
        const b = seqs[j]
        if (this.offset[a] === this.offset[b]) this.error(`partition ${p}: #${a} and #${b} both at offset ${this.offset[a]}`)
        else if (b < a) this.error(`partition ${p}: produce order not kept: #${b} at offset ${this.offset[b]} after #${a}`)
      }
    })
    this.pos = new Array(PARTITIONS).fill(0)
    return this.errors.length === 0
  }

  check(partition, m) {
    if (partition < 0 || partition >= PARTITIONS) return this.error(`record from partition ${partition}`)
    const exp = this.expected[partition]
    const j = this.pos[partition]
    const offset = BigInt(m.offset)
    if (j >= exp.length) {
      return this.error(`partition ${partition}: extra record at offset ${offset} (all ${exp.length} expected already consumed)`)
    }
    this.pos[partition] = j + 1
    const i = exp[j]
    const where = `partition ${partition} offset ${offset}`
    if (offset !== this.offset[i]) return this.error(`${where}: expected offset ${this.offset[i]} (record #${i}) at index ${j}`)
    const key = m.key === null ? null : m.key.toString()
    const value = m.value === null ? null : m.value.toString()
    if (key !== this.key(i) || value !== this.value(i)) {
      return this.error(`${where}: key ${key} value ${value}, expected key ${this.key(i)} value ${this.value(i)}`)
    }
    const want = this.headers(i)
    const got = m.headers || {}
    const gotNames = Object.keys(got)
    const wantNames = Object.keys(want)
    const same =
      gotNames.length === wantNames.length &&
      wantNames.every((k, idx) => gotNames[idx] === k && Buffer.isBuffer(got[k]) && got[k].toString() === want[k])
    if (!same) {
      const shown = Object.fromEntries(gotNames.map(k => [k, String(got[k])]))
      this.error(`${where}: headers ${JSON.stringify(shown)}, expected ${JSON.stringify(want)}`)
    }
    if (String(m.timestamp) !== String(this.timestamp(i))) {
      this.error(`${where}: timestamp ${m.timestamp}, expected ${this.timestamp(i)}`)
    }
  }

  allDone() {
    return this.expected.every((e, p) => this.pos[p] >= e.length)
  }
  consumed() {
    return this.pos.reduce((a, b) => a + b, 0)
  }
  finishConsume() {
    this.expected.forEach((e, p) => {
      if (this.pos[p] !== e.length) this.error(`partition ${p}: consumed ${this.pos[p]} of ${e.length} records`)
    })
    return this.errors.length === 0
  }
  summary() {
    return `per partition [${this.expected.map(e => e.length).join(', ')}]`
  }
}

// ---- produce / consume -------------------------------------------------------

async function createTopic(kafka, topic) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 30000,
    })
    if (!created) throw new Error(`createTopics(${topic}) returned false (topic already exists?)`)
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    const parts = md.topics[0].partitions
    if (parts.length !== PARTITIONS) throw new Error(`topic ${topic} has ${parts.length} partitions in metadata`)
  } finally {
    await admin.disconnect()
  }
}

async function produce(kafka, topic, codec, recs, autoCreate) {
  // Wrap the default (Java-compatible murmur2) partitioner to learn where each
  // record goes; messages of one send() keep their order within a partition.
  const partitionOfKey = new Map()
  let partitionCount = -1
  const createPartitioner = () => {
    const inner = Partitioners.DefaultPartitioner()
    return args => {
      const p = inner(args)
      partitionCount = args.partitionMetadata.length
      partitionOfKey.set(args.message.key, p)
      return p
    }
  }
  const producer = kafka.producer({ createPartitioner, allowAutoTopicCreation: autoCreate })
  await producer.connect()
  try {
    for (let start = 0; start < recs.n; start += SEND_CHUNK) {
      const end = Math.min(recs.n, start + SEND_CHUNK)
      const messages = []
      for (let i = start; i < end; i++) {
        messages.push({
          key: recs.key(i),
          value: recs.value(i),
          headers: recs.headers(i),
          timestamp: String(recs.timestamp(i)),
        })
      }
      partitionOfKey.clear()
      const result = await producer.send({ topic, messages, acks: -1, timeout: 60000, compression: COMPRESSION[codec] })
      if (partitionCount !== PARTITIONS) {
        recs.error(`the partitioner saw ${partitionCount} partitions, expected ${PARTITIONS}`)
        return false
      }
      const base = new Map()
      for (const r of result) {
        if (r.topicName !== topic || r.errorCode !== 0) {
          recs.error(`send: ${JSON.stringify(r)}`)
          return false
        }
        base.set(r.partition, BigInt(r.baseOffset))
      }
      const next = new Map()
      for (let i = start; i < end; i++) {
        const p = partitionOfKey.get(recs.key(i))
        if (p === undefined || !base.has(p)) {
          recs.error(`record #${i}: no partition/baseOffset (partition ${p})`)
          return false
        }
        const k = next.get(p) || 0n
        next.set(p, k + 1n)
        recs.partition[i] = p
        recs.offset[i] = base.get(p) + k
      }
    }
  } finally {
    await producer.disconnect()
  }
  return recs.finishProduce()
}

async function consume(kafka, topic, recs, runId) {
  const consumer = kafka.consumer({
    groupId: `shopstream-test-${topic}-${runId}`,
    maxBytes: 50 * 1024 * 1024,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxWaitTimeInMs: 200,
    sessionTimeout: 30000,
    heartbeatInterval: 3000,
    allowAutoTopicCreation: false,
  })
  await consumer.connect()
  let finish
  const finished = new Promise(resolve => {
    finish = resolve
  })
  let lastProgress = Date.now()
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) {
      recs.error(`consumer crashed: ${payload.error && payload.error.name}: ${payload.error && payload.error.message}`)
      finish()
    }
  })
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: true,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch, heartbeat }) => {
        if (batch.messages.length) lastProgress = Date.now()
        for (const m of batch.messages) recs.check(batch.partition, m)
        if (recs.allDone() || recs.errors.length > MAX_REPORTED) finish()
        await heartbeat()
      },
    })
    const timer = setInterval(() => {
      if (Date.now() - lastProgress > 30000) {
        recs.error(`nothing consumed for 30 s (${recs.consumed()} of ${recs.n} records)`)
        finish()
      }
    }, 500)
    await finished
    clearInterval(timer)
  } finally {
    await consumer.disconnect()
  }
  return recs.finishConsume()
}

async function main() {
  const codecs = (process.env.SHOPSTREAM_TEST_CODECS || '').split(/[ ,]+/).filter(Boolean)
  const n = parseInt(process.env.SHOPSTREAM_TEST_RECORDS || '', 10) || 100000
  const skipCreate = process.env.SHOPSTREAM_TEST_SKIP_CREATE === '1'
  const runId = `${process.pid}-${Math.floor(Date.now() / 1000)}`
  await zstd.init()
  registerCodecs()
  const kafka = new Kafka({
    clientId: 'shopstream-test-kafkajs',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    retry: { retries: 5 },
  })
  log(`KafkaJS ${require('kafkajs/package.json').version}, bootstrap ${bootstrap}, ${n} records per codec`)
  const failed = []
  for (const codec of codecs.length ? codecs : CODECS) {
    const topic = `kafkajs-${codec}-${runId}`
    const recs = new Records(codec, n)
    let ok = false
    const t0 = Date.now()
    let t1 = t0
    let t2 = t0
    let t3 = t0
    try {
      if (!COMPRESSION.hasOwnProperty(codec)) throw new Error(`unknown codec ${codec}`)
      if (!skipCreate) await createTopic(kafka, topic)
      t1 = Date.now()
      if (await produce(kafka, topic, codec, recs, skipCreate)) {
        t2 = Date.now()
        ok = await consume(kafka, topic, recs, runId)
        t3 = Date.now()
      }
    } catch (e) {
      recs.error(`${e.name}: ${e.message}`)
      ok = false
    }
    const s = ms => (ms / 1000).toFixed(1)
    if (ok) {
      console.log(
        `ok   ${CLIENT}/${codec}: topic ${topic}, ${recs.summary()}, create ${s(t1 - t0)}s produce ${s(t2 - t1)}s consume+verify ${s(t3 - t2)}s`,
      )
    } else {
      console.log(`FAIL ${CLIENT}/${codec}: topic ${topic}, ${recs.errors.length} mismatches`)
      failed.push(codec)
    }
  }
  if (failed.length) {
    console.log(`${CLIENT}: FAILED (${failed.join(' ')})`)
    return 1
  }
  console.log(`${CLIENT}: all codecs passed`)
  return 0
}

if (bootstrap) {
  main().then(
    code => process.exit(code),
    e => {
      console.error(e)
      process.exit(1)
    },
  )
}
