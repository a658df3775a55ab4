package poller

import "time"

// Every tuning constant of the poller, grouped by the rule it serves.
// Each says what it does and why (a rule a reader can state). Guards names
// what catches a change: the golden runs (sim/testdata/golden, run by
// `go test ./sim -run TestGolden`) whose figures move when the constant
// alone is set to the value in brackets, and the unit tests that fail.
// DESIGN.md states the rules as a whole; why a value is what it is today
// is in the commit that set it (`git log -S<name>`).

// Pacing: the wait between two requests (see adapt).
const (
	// shareWeight is the weight of the newest answer in the smoothed share
	// of news (Core.newShare).
	// Why: one empty answer must not stall discovery while other peers
	// still have plenty to send.
	// Guards: (at 0.4) every golden run but the baseline.
	shareWeight = 0.5

	// maxSlowdown is how many times MinInterval the wait may grow while
	// answers still bring news, and where the doubling of a saturated
	// wait starts.
	// Why: a falling share of news slows the polling, but a network that
	// still has news is polled at least this often.
	// Guards: (at 80) growth-150-seed1, churn-200-seed{1,2},
	// partition-200-seed{1,2}, sybil-200-seed1,
	// sybil-150-seed2-attackers30.
	maxSlowdown = 100

	// minShare is the least share of news the wait is computed from.
	// Why: MinInterval/minShare is maxSlowdown MinInterval, so the wait
	// that falls with the share of news meets the saturated one.
	// Guards: (at 0.02) growth-150-seed1, churn-200-seed2,
	// partition-200-seed{1,2}, sybil-200-seed1,
	// sybil-150-seed2-attackers30; TestTuningRulesHold.
	minShare = 1.0 / maxSlowdown

	// idleAnswers is how many answers in a row with nothing new are taken
	// for a saturated network; past it the wait doubles with each more.
	// As many empty answers from peers that dialled us put a peer we
	// dialled first in a tie (see askBest).
	// Why: a peer or two with nothing new is normal; several in a row
	// mean nobody has news, and polling on only needs to catch changes.
	// Guards: (at 4) cold-200-seed2, join-2000-seed2,
	// growth-150-seed1, churn-200-seed{1,2}, partition-200-seed{1,2},
	// sybil-200-seed1, sybil-150-seed2-attackers30.
	idleAnswers = 3

	// missingShare: a book at least this much smaller than the network
	// size estimate is not saturated, whatever the answers say.
	// Why: an empty answer from a walk in ground we know says nothing of
	// what we miss elsewhere; and the target is every node at 99% of the
	// network, so a node that may miss 1% keeps asking.
	// Guards: the attack rows' worst honest node (pexsim -scenario
	// sybil); from 0.01 to 0.03 the golden runs move by a few messages
	// (sybil-120-seed2-attackers30); at 0.2, cold-200-seed2 and
	// churn-200-seed2.
	missingShare = 0.01

	// bookFull is the PeerRatio at which the wait is MaxInterval once an
	// answer brings nothing and every connected peer has answered.
	// Why: a nearly full book has no room for what polling would bring.
	// Guards: TestCoreAsksTheWalkNearestAGap (at 0.9),
	// TestCoreIntervalMaxWhenBookNearlyFullAndQuiet; golden
	// join-2000-seed{1,2} only at 0.5.
	bookFull = 0.95

	// refusedFade is what remains of the count of refused addresses
	// (Core.refusedPending) after each answer that brought nothing new.
	// Why: refused addresses exist and keep us asking, but a source that
	// keeps sending what cannot be stored must not keep us polling.
	// Guards: nothing yet: no golden run or test moves even at 0.5.
	refusedFade = 0.98

	// maxRefusedShare caps the share of the book that refused addresses
	// count as missing.
	// Why: refusals prove addresses exist, not how many; the walks' size
	// estimate, not refusals, must say that more than half is missing.
	// Guards: nothing yet: no golden run or test moves even at 0.05.
	maxRefusedShare = 0.5

	// noPeersFirstWait is the first back-off while nobody is connected;
	// it doubles up to Config.NoPeersMaxBackoff.
	// Why: a node without peers retries soon, then ever more rarely.
	// Guards: (at 2 s) every golden run but join-2000;
	// TestCoreNoPeersBackoff, TestCoreRestartSignal.
	noPeersFirstWait = time.Second
)

// Whom to ask: among the peers whose spacing allows a request (see Tick).
const (
	// betterBy: the poller waits for a peer not yet due, if it is due
	// within V2RequestInterval and worth this much more than the best
	// peer due now.
	// Why: a short wait for a clearly better answer beats a request
	// spent on a worse one; a small difference is not worth waiting for.
	// Guards: (at 0.2) cold-200-seed{1,2,3}, growth-150-seed1,
	// churn-200-seed{1,2}, partition-200-seed2, sybil-200-seed1,
	// sybil-150-seed2-attackers30, flood-200-seed1,
	// flood-200-seed2-attackers30.
	betterBy = 0.25
)

// Expected yield of a peer that has not answered yet (see
// firstAnswerYield and expectedYield).
const (
	// joinAhead: once the walking peers' books are this many times ours,
	// a new peer is judged by the stretch of our order its first run
	// covers, not by the share of the network we miss.
	// Why: joining a network that knows itself, a new peer's first run
	// holds what lies after its walk start, and what we hold there it
	// repeats; while books grow together ours is no guide to its run.
	// Guards: (at 1.7) cold-200-seed{1,2,3}, churn-200-seed{1,2},
	// sybil-200-seed1, flood-200-seed1.
	joinAhead = 1.5

	// unaskedYield is the least yield of a new peer while no peer walks
	// (nothing shows the network's size) or while we lack minSources.
	// Why: a peer never asked may know anything, but is not worth more
	// than a walk known to bring news.
	// Guards: (at 0.45) every golden run but the baseline and
	// join-2000.
	unaskedYield = 0.5

	// minSources is how many connected peers must be sources (see
	// corePeer.source) before new peers are judged by the walks alone.
	// Why: one peer's walk ends where its book ends, so a book copied
	// from one peer looks complete; only a second source shows what the
	// first lacked.
	// The same count of the peers we dialled decides whether one we
	// dialled goes first in a tie (see untried).
	// Guards: (at 3) every golden run but the baseline and join-2000;
	// TestCoreSeeksASecondSource, TestCoreAsksANewPeerThatAskedUsFirst,
	// TestCoreAsksAPeerWeDialledBeforeOneThatDialledUsWorthTheSame.
	minSources = 2

	// stallMiss is the share of the network the size estimate must say we
	// miss, while answers bring nothing, for a new peer that dialled us
	// to be worth that share (one we dialled is worth it whatever the
	// share: see expectedYield).
	// Why: well above how high the estimate reads when we miss nothing,
	// well below what a node whose sources are stuck misses.
	// Guards: (at 0.3) cold-200-seed1, growth-150-seed1,
	// churn-200-seed{1,2}, partition-200-seed{1,2}, sybil-200-seed1,
	// flood-200-seed1, flood-200-seed2-attackers30.
	stallMiss = 0.25

	// stallAnswers: past this many idle answers in a row (Core.idle), a
	// new peer is worth what the estimate says we miss, if over stallMiss,
	// and one we dialled and have not heard from is asked first (see
	// stallBreaker).
	// Why: answers that keep bringing nothing while the estimate says we
	// miss much mean our sources hold no more than we do, which their
	// walks cannot show; one empty answer is not yet that.
	// Guards: (at 3) growth-150-seed1, churn-200-seed{1,2},
	// partition-200-seed{1,2}, sybil-200-seed1,
	// sybil-150-seed2-attackers30, flood-200-seed1;
	// TestCoreLooksPastSourcesAfterThreeEmptyAnswers.
	stallAnswers = 2
)

// Whom to ask: peers that draw on us (see corePeer.drawsOnUs).
const (
	// mutualAsks is how many of a peer's requests we must have answered
	// on this connection for it to draw on us.
	// Why: one request is what a node that has just started sends; a
	// peer that keeps asking has a book to compare with ours.
	// Guards: (at 3) every golden run but the baseline and join-2000;
	// TestCoreAsksANewPeerThatAskedUsFirst,
	// TestCoreGivesTheMutualBonusOncePerConnection.
	mutualAsks = 2

	// mutualBonus: while we lack minSources, a new peer that draws on us
	// is worth this much more (1+mutualBonus times).
	// Why: a pex peer leaves out of its answers what we told it, as we
	// leave out what it told us, so between peers that ask each other each
	// address travels once.
	// Guards: (at 0.1) cold-200-seed{1,3}, churn-200-seed1,
	// sybil-200-seed1, sybil-150-seed2-attackers30, flood-200-seed1.
	mutualBonus = 0.05

	// toldLately: a new peer that draws on us gets the told preference
	// only if we answered one of its requests within this time.
	// Why: a peer still asking is still learning; one that asked long ago
	// likely knows just what we do.
	// Guards: (at 5 s) growth-150-seed1, partition-200-seed{1,2},
	// sybil-200-seed1, sybil-150-seed2-attackers30.
	toldLately = 10 * time.Second

	// toldBonus: past stallAnswers, a new peer that has had a share s of
	// our book is worth up to 1+toldBonus*s times what we miss.
	// Why: a peer we told everything can only send us what we miss, while
	// another new peer's first run repeats what we know.
	// Guards: (at 0.1) growth-150-seed1.
	toldBonus = 0.05
)

// Expected yield of a peer that walks (see answeredYield and aheadYield).
const (
	// lastYieldFloor: a walking peer is worth at least this share of the
	// yield of its last answer.
	// Why: the model of its next run can be wrong (books overlap
	// unevenly); what the peer just did is evidence too.
	// Guards: (at 1/3) cold-200-seed{2,3}, join-2000-seed{1,2},
	// churn-200-seed2, sybil-200-seed1.
	lastYieldFloor = 0.5

	// walkHoldsMissing is how likely a walking peer is taken to hold a
	// node we miss; a peer that has walked a share f of its lap is worth
	// 1/(1-walkHoldsMissing*f) times more.
	// Why: what we miss is more likely in the part of its book not yet
	// shown, so finishing walks covers the network, and sampling does not.
	// Guards: (at 0.7) cold-200-seed{1,3}, churn-200-seed1,
	// sybil-200-seed1, flood-200-seed1.
	walkHoldsMissing = 0.8

	// lookAhead is how many runs ahead aheadYield looks for a gap in our
	// book, for a walking peer whose last run brought nothing.
	// Why: a walk moves one run per answer, so the peer nearest a gap is
	// asked until it gets there, rather than every walk in turn.
	// Guards: no golden run at 8; at 2, churn-200-seed2,
	// partition-200-seed{1,2} and TestCoreAsksTheWalkNearestAGap; at
	// 64, partition-200-seed1.
	lookAhead = 16

	// gapShare is the least share of a run that must be missing from our
	// book for aheadYield to count the run as a gap.
	// Why: the model's noise must not pass for a gap.
	// Guards: (at 0.3) cold-200-seed{1,3}, growth-150-seed1,
	// churn-200-seed{1,2}, partition-200-seed{1,2}, sybil-200-seed1,
	// sybil-150-seed2-attackers30, flood-200-seed1.
	gapShare = 0.25
)

// The news floor of an answered peer whose walk is done or brought nothing
// (see newsFloor).
const (
	// newsFloorGain: such a peer is worth at least this many times the
	// share of the network we may miss.
	// Why: its next answer is news from the whole network, and what a
	// node misses at the end is what the network learns last, so the
	// share of it new to us can be several times the share we miss.
	// Guards: (at 6) cold-200-seed{1,2,3}, growth-150-seed1,
	// churn-200-seed{1,2}, partition-200-seed{1,2}, sybil-200-seed1,
	// sybil-150-seed2-attackers30, flood-200-seed1.
	newsFloorGain = 8

	// newsFloorRamp is how long after we asked the peer the floor takes
	// to grow whole.
	// Why: news gathers with time; a peer asked a moment ago has none.
	// Guards: (at 20 s) every golden run but the baseline and
	// join-2000; TestCoreAsksAPeerThatHadOurBookWhenSourcesStall,
	// TestCoreExpectsNoMoreNewsThanADonePeerGathers.
	newsFloorRamp = 30 * time.Second

	// newsRateSlack: while it ramps, a done peer's floor grows at most
	// this many times as fast as its own news came (corePeer.newsRate).
	// Why: a peer whose last answers held a few entries of news gathers
	// few more; past newsFloorRamp its old pace says little.
	// Guards: (at 3) cold-200-seed2, growth-150-seed1,
	// churn-200-seed2, sybil-150-seed2-attackers30.
	newsRateSlack = 4

	// minNewsSpan is the least time, in seconds, a done peer's news rate
	// is measured over.
	// Why: two answers to requests sent in the same instant must not
	// give an infinite rate.
	// Guards: no golden run at 10 ms; at 1 s, every golden run but the
	// baseline and join-2000.
	minNewsSpan = 1e-3
)

// The size estimate (see walkedSize, sizeEstimator and missingAtMost).
const (
	// walkSizeZ is how many standard errors below the pooled walk density
	// the network size is taken.
	// Why: one run of 100 is off by a tenth, and a dense run taken for a
	// larger network sends us to new peers for nothing.
	// Guards: (at 1.5) cold-200-seed{1,2,3}, join-2000-seed2,
	// growth-150-seed1, churn-200-seed{1,2}, sybil-200-seed1,
	// sybil-150-seed2-attackers30, flood-200-seed1;
	// TestCoreSizeEstimatePoolsWalks.
	walkSizeZ = 2

	// estimatorDecay is what remains of the mark-recapture sums after
	// each answer.
	// Why: old samples of a growing network read it too small; the
	// estimate must follow the network.
	// Guards: (at 0.9) cold-200-seed2, growth-150-seed1,
	// churn-200-seed{1,2}, partition-200-seed{1,2}, sybil-200-seed1,
	// sybil-150-seed2-attackers30, flood-200-seed1,
	// flood-200-seed2-attackers30.
	estimatorDecay = 0.95

	// estimateTrust: where the share we miss is computed (the news floor,
	// the stall rule), the mark-recapture estimate counts for at most this
	// many times the larger of our book and the walked size.
	// Why: peers that ask us leave out what we told them, so recaptures
	// are too few and the estimate reads high. It must stay above
	// 1/(1-stallMiss) = 4/3, or the stall rule could never fire while the
	// walks show our own size.
	// Guards: (at 1.7) cold-200-seed{1,2}, growth-150-seed1,
	// churn-200-seed{1,2}, sybil-200-seed1,
	// sybil-150-seed2-attackers30, flood-200-seed1;
	// TestCoreTrustsTheMarkRecaptureEstimateOnlySoFar; TestTuningRulesHold
	// keeps it above 4/3.
	estimateTrust = 1.5
)

// Reading an answer (see handleResponse).
const (
	// fullAnswer is the fewest entries of an answer that does not end the
	// peer's lap.
	// Why: a server whose walk goes on fills its answer; an answer can
	// lose a few entries on the way (a V1 answer drops the names it could
	// not resolve), and only a clearly short one means the walk is done.
	// Guards: (at 8/10) cold-200-seed3, growth-150-seed1,
	// partition-200-seed{1,2}, sybil-200-seed1,
	// sybil-150-seed2-attackers30, flood-200-seed1,
	// flood-200-seed2-attackers30.
	fullAnswer = MaxAddresses * 9 / 10
)

// Defences against one-subnet answers, garbage and crowded inbound peers.
const (
	// minGroupVote is the fewest entries an answer needs to be judged a
	// one-subnet answer (see oneGroup).
	// Why: a few entries of one subnet may be chance; a majority of many
	// is a sybil pushing its own.
	// Guards: (at 12) sybil-200-seed1, sybil-150-seed2-attackers30.
	minGroupVote = 10

	// minMostlyBad is the fewest entries an answer needs to be judged
	// mostly unusable (a fatal peer error) when over half are.
	// Why: in a short answer one or two bad entries, such as our own
	// address, are honest mistakes.
	// Guards: TestCoreBadInput (at 6); no golden run (the simulator's
	// attackers send valid entries).
	minMostlyBad = 4

	// doubtFor is how long a peer that dialled us from a crowded subnet
	// waits to be asked, unless it sends a valid request first.
	// Why: far longer than a round trip, in which an honest new peer
	// asks us; flooders that reconnect and break the protocol at once are
	// never asked.
	// Guards: (at 2 s) flood-200-seed1.
	doubtFor = time.Second
)
