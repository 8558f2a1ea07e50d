//! `--plot FILE.svg`: the runs' latency CDFs on a log scale of time, by plotters.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Run;

const COLOURS: [RGBColor; 3] = [
    RGBColor(200, 60, 50),
    RGBColor(50, 100, 200),
    RGBColor(40, 150, 70),
];

/// Writes the CDF of each run's latencies: the share of requests answered within x ms.
pub fn write(path: &Path, runs: &[Run]) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("--plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let slowest = runs.iter().map(|r| r.latency_ms.max).fold(10.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "latency CDF (share of requests answered within)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((0.5f64..slowest * 1.5).log_scale(), 0f64..1f64)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("share of requests")
        .draw()
        .map_err(|e| fail(&e))?;
    for (run, colour) in runs.iter().zip(COLOURS.iter().cycle()) {
        let total = run.histogram.len().max(1) as f64;
        let points = run
            .histogram
            .iter_recorded()
            .map(|v| {
                (
                    v.value_iterated_to() as f64 / 1000.0,
                    v.count_since_last_iteration(),
                )
            })
            .scan(0u64, |seen, (ms, count)| {
                *seen += count;
                Some((ms.max(0.5), *seen as f64 / total))
            });
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label(run.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
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
