//! `--plot FILE.svg`: the runs' latency CDFs on a log scale of time, by plotters.

use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::report::Run;

/// Four colours told apart with any colour vision (Okabe and Ito's palette), each with its own
/// dash, so that the series differ in print and for readers who do not see colour.
const STYLES: [(RGBColor, Dash); 4] = [
    (RGBColor(0, 114, 178), Dash::Solid),
    (RGBColor(213, 94, 0), Dash::Long),
    (RGBColor(0, 158, 115), Dash::Short),
    (RGBColor(204, 121, 167), Dash::Dotted),
];

#[derive(Clone, Copy)]
enum Dash {
    Solid,
    Long,
    Short,
    Dotted,
}

impl Dash {
    /// Dash and gap, in pixels (a gap of zero draws a solid line).
    fn pattern(self) -> (u32, u32) {
        match self {
            Dash::Solid => (10, 0),
            Dash::Long => (12, 6),
            Dash::Short => (5, 5),
            Dash::Dotted => (2, 4),
        }
    }
}

/// Writes each run's successful requests as a CDF: the share of *all* its requests answered
/// with a success within x ms. A run's curve tops out at its success rate, so a client whose
/// failures are fast does not look quick; each label gives the share that failed.
pub fn write(path: &Path, runs: &[Run]) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("--plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let slowest = runs.iter().map(|r| r.latency_ms.max).fold(10.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "successful requests: share of all requests answered with a success within x",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((0.5f64..slowest * 1.5).log_scale(), 0f64..1f64)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("share of all requests, successes only")
        .draw()
        .map_err(|e| fail(&e))?;
    for (run, &(colour, dash)) in runs.iter().zip(STYLES.iter().cycle()) {
        let points = success_cdf(run);
        let style = colour.stroke_width(2);
        let label = format!(
            "{} ({:.1}% failed)",
            run.label(),
            100.0 - run.success_rate()
        );
        let (size, spacing) = dash.pattern();
        chart
            .draw_series(DashedLineSeries::new(points, size, spacing, style))
            .map_err(|e| fail(&e))?
            .label(label)
            .legend(move |(x, y)| {
                let (size, spacing) = dash.pattern();
                DashedPathElement::new(vec![(x, y), (x + 24, y)], size, spacing, style)
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

/// The run's successful requests' latencies as (ms, share of all requests within it).
fn success_cdf(run: &Run) -> Vec<(f64, f64)> {
    let total = run.results.len().max(1) as f64;
    let mut latencies: Vec<f64> = (run.results.iter())
        .filter(|outcome| outcome.reason == "success")
        .map(|outcome| outcome.elapsed_ms.max(0.5))
        .collect();
    latencies.sort_by(f64::total_cmp);
    (latencies.iter().enumerate())
        .map(|(i, &ms)| (ms, (i + 1) as f64 / total))
        .collect()
}
