//! gRPC's retry throttling scenario from grpc-go's `TestRetryThrottling` (gRFC A6): four
//! attempts a call, `maxTokens` 10 and `tokenRatio` 0.5, against a server that answers only
//! some of its calls. Shared by the budget's test (a scripted service, paused clock) and the
//! service config's (a real tonic server).

/// The server's calls (numbered from 0) that succeed; every other call fails retryably.
pub const ANSWERED: [u32; 10] = [0, 3, 6, 10, 11, 12, 13, 14, 16, 18];

/// For each of twelve calls in a row: whether it succeeds, and how many calls the server has
/// had after it. A6's arithmetic: a failure takes a token, a success gives back half of one,
/// and nothing is retried at 5 tokens or fewer.
pub const CALLS: [(bool, usize); 12] = [
    (true, 1),
    (true, 4),
    (true, 7),
    (false, 9),
    (false, 10),
    (true, 11),
    (true, 12),
    (true, 13),
    (true, 14),
    (true, 15),
    (true, 17),
    (false, 18),
];
