#ifndef EDDY_CRDKAFKA_SHIM_H
#define EDDY_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/*
 * Swift cannot call variadic C functions, so rd_kafka_producev() is wrapped
 * here with a fixed argument list.
 *
 * The payload and key are copied by librdkafka (RD_KAFKA_MSG_F_COPY), so the
 * caller's buffers only need to live for the duration of the call.
 * `headers` may be NULL; on success librdkafka takes ownership of them, on
 * failure the caller still owns them.
 * `timestamp_ms` of 0 means "now".
 */
static inline rd_kafka_resp_err_t
eddy_rd_kafka_produce(rd_kafka_t *rk,
                      rd_kafka_topic_t *rkt,
                      int32_t partition,
                      const void *key,
                      size_t key_len,
                      const void *value,
                      size_t value_len,
                      int64_t timestamp_ms,
                      rd_kafka_headers_t *headers) {
        return rd_kafka_producev(rk,
                                 RD_KAFKA_V_RKT(rkt),
                                 RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_KEY((void *)key, key_len),
                                 RD_KAFKA_V_VALUE((void *)value, value_len),
                                 RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                                 RD_KAFKA_V_HEADERS(headers),
                                 RD_KAFKA_V_END);
}

/*
 * Fixed-arity wrapper for the variadic
 * rd_kafka_mock_broker_push_request_error_rtts(): pushes one (error, delay)
 * entry onto a mock broker's error stack for `api_key`.
 */
static inline rd_kafka_resp_err_t
eddy_rd_kafka_mock_broker_push_request_error_rtt(rd_kafka_mock_cluster_t *mcluster,
                                                  int32_t broker_id,
                                                  int16_t api_key,
                                                  rd_kafka_resp_err_t err,
                                                  int rtt_ms) {
        return rd_kafka_mock_broker_push_request_error_rtts(
            mcluster, broker_id, api_key, 1, err, rtt_ms);
}

#endif
